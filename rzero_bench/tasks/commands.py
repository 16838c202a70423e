"""The ``rzero-bench tasks`` commands: ``list``, ``validate`` and ``inspect``.

``list`` prints one table row per task (suites, item count when the data is local, grader, metrics,
version, source). ``validate`` checks task files strictly and, given a data directory, renders the
templates on the first rows; it prints one line per problem and fails (exit 2) on any. ``inspect``
prints what the model is asked and what it is graded against for the first items of one task: the
system prompt evaluation uses, each rendered user prompt, the choices and the rendered target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rzero_bench.errors import ConfigError, UserError
from rzero_bench.tasks.data import generated_docs, has_local_data, load_docs, local_path, read_local
from rzero_bench.tasks.keys import CATEGORY_KEY, DOC_ID_KEY
from rzero_bench.tasks.registry import (
    default_tasks_dir,
    list_suites,
    list_tasks,
    load_suite,
    load_task,
    load_task_file,
    suites_of,
)
from rzero_bench.tasks.schema import TaskSpec

__all__ = ["list_command", "validate_command", "inspect_command"]


def list_command(tasks_dir: Path | None = None, data_dir: Path | None = None) -> None:
    """Print a rich table of tasks: name, suites, items (when local data exists), metrics, version."""
    from rich.console import Console
    from rich.table import Table

    if data_dir is None and os.environ.get("RZERO_DATA_DIR"):
        data_dir = Path(os.environ["RZERO_DATA_DIR"])
    memberships = suites_of(tasks_dir)
    table = Table(title="rzero-bench tasks")
    table.add_column("task", no_wrap=True)
    for col in ("suites", "items", "grader", "metrics", "version", "source"):
        table.add_column(col)
    for name in list_tasks(tasks_dir):
        spec = load_task(name, tasks_dir)
        items = "-"
        if spec.metadata.processor == "generated":
            items = str(len(generated_docs(spec)))
        elif data_dir is not None and has_local_data(spec, data_dir):
            try:
                items = str(len(read_local(spec, data_dir)))
            except UserError:
                items = "?"
        metrics = ", ".join(
            m.label + (f" (T={m.temperature:g}, top_p={m.top_p:g})" if m.name != "acc" else "")
            for m in spec.metadata.metrics
        )
        table.add_row(
            name,
            ", ".join(memberships.get(name, [])) or "-",
            items,
            spec.metadata.grader,
            metrics,
            spec.metadata.version,
            spec.dataset_path,
        )
    Console().print(table)


def _check_render(spec: TaskSpec, data_dir: Path, rows: int = 3) -> None:
    docs = load_docs(spec, data_dir=data_dir)
    for d in docs[:rows]:
        spec.render_text(d)
        spec.render_target(d)
        spec.render_choices(d)


def validate_command(paths: Sequence[Path] = (), tasks_dir: Path | None = None, data_dir: Path | None = None) -> None:
    """Validate task files (default: every shipped task and suite); one line per problem, exit 2 on any."""
    from rich.console import Console

    console = Console(stderr=False)
    files = [Path(p) for p in paths] or sorted(default_tasks_dir(tasks_dir).glob("*.yaml"))
    errors: list[str] = []
    for f in files:
        try:
            spec = load_task_file(f)
            if data_dir is not None and has_local_data(spec, data_dir):
                _check_render(spec, data_dir)
            console.print(f"ok  {f}  ({spec.task} v{spec.version}, hash {spec.hash[:12]})", highlight=False)
        except UserError as e:
            errors.append(str(e) if str(f) in str(e) else f"{f}: {e}")
    if not paths:
        for s in list_suites(tasks_dir):
            try:
                suite = load_suite(s, tasks_dir)
                for t in suite.tasks:
                    load_task(t, tasks_dir)
            except UserError as e:
                errors.append(f"suite {s}: {e}")
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        for msg in errors:
            console.print(f"error: {msg}", highlight=False, soft_wrap=True)
        raise ConfigError(f"{len(errors)} task definition(s) invalid (see above)")


def inspect_command(
    name: str, n: int = 2, tasks_dir: Path | None = None, data_dir: Path | None = None
) -> list[dict[str, object]]:
    """Print the rendered prompt, choices and target of the task's first ``n`` items; return them.

    The system prompt shown is the one evaluation sends: the task's ``metadata.system_prompt``, or
    the solver prompt when it has none. Items come in dataset order (no ``--limit`` subsample).
    """
    from rich.console import Console
    from rich.rule import Rule

    from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT

    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    spec = load_task(name, tasks_dir)
    docs = load_docs(spec, data_dir=data_dir)
    if spec.metadata.processor == "generated":
        source = f"generator {spec.metadata.generator}"
    elif data_dir is not None:
        source = str(local_path(spec, data_dir))
    else:
        source = f"hub {spec.dataset_path}"
    system = spec.metadata.system_prompt if spec.metadata.system_prompt is not None else SOLVER_SYSTEM_PROMPT
    console = Console(highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"task {spec.task} v{spec.version} (hash {spec.hash[:12]}), grader {spec.grader}, {len(docs)} items from {source}"
    )
    console.print(f"system prompt: {system!r}" if system else "system prompt: (none)")
    shown: list[dict[str, object]] = []
    for i, doc in enumerate(docs[:n], start=1):
        item: dict[str, object] = {
            "doc_id": doc[DOC_ID_KEY],
            "prompt": spec.render_text(doc),
            "choices": spec.render_choices(doc),
            "target": spec.render_target(doc),
        }
        title = f"item {i}/{min(n, len(docs))}: doc_id {item['doc_id']}"
        if CATEGORY_KEY in doc:
            title += f", category {doc[CATEGORY_KEY]}"
        console.print(Rule(title, style="dim"))
        console.print(item["prompt"])
        console.print(Rule("target", style="dim"))
        console.print(str(item["target"]))
        choices = item["choices"]
        if isinstance(choices, list):
            console.print(f"choices (doc_to_choice): {', '.join(choices)}")
        shown.append(item)
    return shown
