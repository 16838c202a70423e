"""Benchmark tasks: strict YAML definitions (lm-eval key names), suites, data loading, ``--limit``.

One concern per module; this file only re-exports the public API:

- :mod:`~rzero_bench.tasks.schema`: the ``TaskSpec`` model, its validation and :func:`task_hash`.
- :mod:`~rzero_bench.tasks.registry`: the tasks directory, strict YAML reading, suites, did-you-mean.
- :mod:`~rzero_bench.tasks.render`: Jinja2 templates in a sandbox with ``StrictUndefined``.
- :mod:`~rzero_bench.tasks.data`: items from a local mirror, the hub or a generator; seeded subsample.
- :mod:`~rzero_bench.tasks.generators`: the named built-in datasets (``processor: generated``).
- :mod:`~rzero_bench.tasks.keys`: the reserved ``_doc_id`` / ``_category`` item fields.
- :mod:`~rzero_bench.tasks.commands`: ``rzero-bench tasks list | validate | inspect``.

The task YAML files themselves live in the top-level ``tasks/`` directory (shipped in the wheel).
"""

from __future__ import annotations

from rzero_bench.tasks.commands import inspect_command, list_command, validate_command
from rzero_bench.tasks.data import (
    generated_docs,
    has_local_data,
    load_docs,
    local_path,
    offline,
    read_local,
    subsample,
)
from rzero_bench.tasks.generators import GENERATORS
from rzero_bench.tasks.keys import CATEGORY_KEY, DOC_ID_KEY
from rzero_bench.tasks.registry import (
    SUITES_SUBDIR,
    default_tasks_dir,
    list_suites,
    list_tasks,
    load_suite,
    load_task,
    load_task_file,
    resolve_tasks,
    suites_of,
)
from rzero_bench.tasks.render import CHOICE_LETTERS
from rzero_bench.tasks.schema import (
    GenerationKwargs,
    GraderKind,
    MetricSpec,
    SamplingPass,
    Suite,
    TaskMetadata,
    TaskSpec,
    parse_task,
    task_hash,
)

_offline = offline  # the name rzero_bench.evaluate imports

__all__ = [
    "DOC_ID_KEY",
    "CATEGORY_KEY",
    "CHOICE_LETTERS",
    "GENERATORS",
    "SUITES_SUBDIR",
    "GraderKind",
    "GenerationKwargs",
    "MetricSpec",
    "TaskMetadata",
    "TaskSpec",
    "SamplingPass",
    "Suite",
    "parse_task",
    "task_hash",
    "default_tasks_dir",
    "load_task",
    "load_task_file",
    "load_suite",
    "list_tasks",
    "list_suites",
    "resolve_tasks",
    "suites_of",
    "offline",
    "generated_docs",
    "read_local",
    "has_local_data",
    "load_docs",
    "local_path",
    "subsample",
    "list_command",
    "validate_command",
    "inspect_command",
]
