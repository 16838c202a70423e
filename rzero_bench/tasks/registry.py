"""Finding and reading task files: the tasks directory, strict YAML, suites, did-you-mean.

Task files are ``<tasks_dir>/<task>.yaml`` and suites ``<tasks_dir>/suites/<suite>.yaml``; the
default ``tasks_dir`` is the shipped top-level ``tasks/`` (:func:`rzero_bench.resources.shipped_dir`).
YAML is read with a ``SafeLoader`` that refuses every explicit tag (``!function``, ``!include``,
python tags), and a file's ``task``/``suite`` name must match its file name. An unknown name is a
one-line :class:`~rzero_bench.errors.UserError` with the closest known name and the full list.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rzero_bench.errors import ConfigError, UserError
from rzero_bench.resources import shipped_dir
from rzero_bench.tasks.schema import Suite, TaskSpec, parse_task, validation_message

__all__ = [
    "SUITES_SUBDIR",
    "read_yaml",
    "load_task_file",
    "default_tasks_dir",
    "list_tasks",
    "list_suites",
    "did_you_mean",
    "load_task",
    "load_suite",
    "resolve_tasks",
    "suites_of",
]

SUITES_SUBDIR = "suites"


class _TaskLoader(yaml.SafeLoader):
    """SafeLoader that rejects every explicit tag (``!function``, ``!include``, python tags...)."""


def _reject_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    tag = node.tag
    line = node.start_mark.line + 1
    hint = " (lm-eval's !function is not supported: express the logic as a Jinja template)" if "function" in tag else ""
    raise ConfigError(f"YAML tag {tag} at line {line} is not allowed{hint}")


_TaskLoader.add_multi_constructor("!", _reject_tag)
_TaskLoader.add_multi_constructor("tag:yaml.org,2002:python", _reject_tag)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file strictly; a missing file, bad encoding or bad YAML is a one-line error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"task file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    try:
        return yaml.load(text, Loader=_TaskLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None


def load_task_file(path: str | os.PathLike[str]) -> TaskSpec:
    """Load and strictly validate one task YAML file."""
    p = Path(path)
    spec = parse_task(read_yaml(p), str(p))
    if spec.task != p.stem:
        raise ConfigError(f"{p}: task name {spec.task!r} must match the file name {p.stem!r}")
    return spec


def default_tasks_dir(tasks_dir: str | os.PathLike[str] | None = None) -> Path:
    """``tasks_dir`` if given, else the shipped ``tasks/``; it must exist."""
    d = Path(tasks_dir) if tasks_dir is not None else shipped_dir("tasks")
    if not d.is_dir():
        raise UserError(f"tasks directory not found: {d}")
    return d


def list_tasks(tasks_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Sorted names of the task files in ``tasks_dir``."""
    return sorted(p.stem for p in default_tasks_dir(tasks_dir).glob("*.yaml"))


def list_suites(tasks_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Sorted names of the suite files in ``tasks_dir/suites``."""
    return sorted(p.stem for p in (default_tasks_dir(tasks_dir) / SUITES_SUBDIR).glob("*.yaml"))


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest of ``choices`` (difflib ratio >= 0.5), else ``""``."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def load_task(name: str, tasks_dir: str | os.PathLike[str] | None = None) -> TaskSpec:
    """Load a task by name from ``tasks_dir`` (default: the tasks shipped with the package)."""
    d = default_tasks_dir(tasks_dir)
    path = d / f"{name}.yaml"
    if not path.is_file():
        known = list_tasks(d)
        raise UserError(f"unknown task {name!r}; {did_you_mean(name, known)}known tasks: {', '.join(known)}")
    return load_task_file(path)


def load_suite(name: str, tasks_dir: str | os.PathLike[str] | None = None) -> Suite:
    """Load and validate a suite by name from ``tasks_dir/suites``."""
    d = default_tasks_dir(tasks_dir)
    path = d / SUITES_SUBDIR / f"{name}.yaml"
    if not path.is_file():
        known = list_suites(d)
        raise UserError(f"unknown suite {name!r}; {did_you_mean(name, known)}known suites: {', '.join(known)}")
    data = read_yaml(path)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: {validation_message(e, Suite)}") from None
    if suite.suite != name:
        raise ConfigError(f"{path}: suite name {suite.suite!r} must match the file name {name!r}")
    return suite


def resolve_tasks(
    suite: str | None = None,
    tasks: str | Sequence[str] | None = None,
    tasks_dir: str | os.PathLike[str] | None = None,
) -> list[TaskSpec]:
    """Task specs for ``--suite`` and/or ``--tasks`` (comma-separated or a list), deduplicated, in order."""
    names: list[str] = []
    if suite:
        names.extend(load_suite(suite, tasks_dir).tasks)
    if tasks:
        items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
        names.extend(t.strip() for t in items if t.strip())
    if not names:
        raise UserError("no tasks selected; pass --suite rzero|math|general or --tasks a,b")
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return [load_task(n, tasks_dir) for n in seen]


def suites_of(tasks_dir: str | os.PathLike[str] | None = None) -> dict[str, list[str]]:
    """task name -> suites containing it."""
    out: dict[str, list[str]] = {}
    for s in list_suites(tasks_dir):
        for t in load_suite(s, tasks_dir).tasks:
            out.setdefault(t, []).append(s)
    return out
