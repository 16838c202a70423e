"""Evaluation protocols and task resolution for ``eval`` and the run's eval stage.

A *protocol* is a named set of per-task changes to the shipped task definitions, kept as data in
``tasks/protocols/<name>.yaml``:

- ``paper`` (the default): the task files as shipped (R-Zero §4; sampled mean@32 for AMC/AIME);
- ``official``: what the official evaluation scripts do (greedy AMC/AIME, General-Reasoner prompts
  and 8192 tokens for MMLU-Pro/SuperGPQA with a random letter when nothing parses, OlympiadBench's
  first answer, BBEH from ``MrLight/bbeh-eval``); each file cites its sources.

A protocol file::

    protocol: official
    version: "1"
    description: ...
    source: ...
    tasks:
      <task>:
        override: {<task YAML keys>}     # deep-merged into the task (mappings merge, lists replace)
        unanswered: none | random_letter # what an item without a parsable answer scores as
        fallback: {warning, override}    # used, with the warning recorded, when the data is missing
        note: ...

The merged mapping is validated exactly like a task file, so a protocol can only express what a
task file can, and the result's ``task_hash`` is the hash of the definition actually evaluated: a
task the protocol leaves alone keeps its hash (comparable across protocols), a changed one gets a
new hash (never averaged with the other). ``unanswered: random_letter`` is not a task key; it
enters the recorded hash as ``sha256({"task": <task hash>, "unanswered": ...})``.

The same overlay mechanism carries the command-line overrides that change what is asked:
``--system-instruction`` (the system prompt of every task) and ``--gen-kwargs`` (the main pass's
``generation_kwargs``); they too change the recorded task hash.

Task lookup: the shipped ``tasks/`` (or ``--tasks-dir``), plus every ``--include-path`` directory
(additive: their tasks and ``suites/`` join the shipped ones; a name defined twice is an error).
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rzero_bench.errors import ConfigError, DataError, UserError
from rzero_bench.resources import shipped_dir
from rzero_bench.store import sha256_json
from rzero_bench.tasks import (
    SUITES_SUBDIR,
    TaskSpec,
    default_tasks_dir,
    has_local_data,
    load_suite,
    load_task_file,
    parse_task,
)

PROTOCOLS_SUBDIR = "protocols"
DEFAULT_PROTOCOL = "paper"
Unanswered = Literal["none", "random_letter"]

__all__ = [
    "DEFAULT_PROTOCOL",
    "EvalTask",
    "Protocol",
    "list_protocols",
    "load_protocol",
    "merge",
    "overlay",
    "plan_tasks",
    "resolve_specs",
    "select_variant",
]


# ----------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fallback(_Strict):
    """The variant used when the protocol's data is not available, with the warning recorded."""

    warning: str
    override: dict[str, Any] = Field(default_factory=dict)


class TaskChange(_Strict):
    """How a protocol changes one task."""

    override: dict[str, Any] = Field(default_factory=dict)
    unanswered: Unanswered = "none"
    fallback: Fallback | None = None
    note: str = ""


class Protocol(_Strict):
    """A named evaluation protocol (``tasks/protocols/<name>.yaml``)."""

    protocol: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    version: str
    description: str
    source: str = ""
    tasks: dict[str, TaskChange] = Field(default_factory=dict)


def _protocol_dirs(tasks_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    dirs = []
    if tasks_dir is not None and (Path(tasks_dir) / PROTOCOLS_SUBDIR).is_dir():
        dirs.append(Path(tasks_dir) / PROTOCOLS_SUBDIR)
    dirs.append(shipped_dir("tasks") / PROTOCOLS_SUBDIR)
    return dirs


def list_protocols(tasks_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the protocols available (shipped, plus ``<tasks_dir>/protocols``)."""
    return sorted({p.stem for d in _protocol_dirs(tasks_dir) if d.is_dir() for p in d.glob("*.yaml")})


def load_protocol(name: str, tasks_dir: str | os.PathLike[str] | None = None) -> Protocol:
    """Load and validate a protocol by name (UserError with did-you-mean when unknown)."""
    for d in _protocol_dirs(tasks_dir):
        path = d / f"{name}.yaml"
        if path.is_file():
            break
    else:
        known = list_protocols(tasks_dir)
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown protocol {name!r}; {hint}known protocols: {', '.join(known)}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    try:
        proto = Protocol.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{path}: {loc}: {first['msg']}") from None
    if proto.protocol != name:
        raise ConfigError(f"{path}: protocol name {proto.protocol!r} must match the file name {name!r}")
    return proto


# ----------------------------------------------------------------------------- overlays
def merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else (lists included) is replaced.

    >>> merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": 3}, "l": [2]})
    {'a': {'b': 1, 'c': 3}, 'l': [2]}
    """
    out = copy.deepcopy(dict(base))
    for k, v in change.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def overlay(spec: TaskSpec, change: Mapping[str, Any], source: str) -> TaskSpec:
    """``spec`` with ``change`` deep-merged into its definition, validated like a task file."""
    if not change:
        return spec
    if "task" in change and change["task"] != spec.task:
        raise ConfigError(f"{source}: an override cannot rename task {spec.task!r}")
    return parse_task(merge(spec.model_dump(mode="json"), change), f"{source} (task {spec.task})")


@dataclass(frozen=True)
class EvalTask:
    """One task as it will be evaluated: the definition, the protocol and its extra rules.

    ``fallback`` is the variant to use when this one's data is missing (``fallback_warning`` is
    then recorded in the result).
    """

    spec: TaskSpec
    protocol: str = DEFAULT_PROTOCOL
    unanswered: Unanswered = "none"
    fallback: EvalTask | None = None
    fallback_warning: str = ""
    note: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def hash(self) -> str:
        """Same as :attr:`task_hash` (callers written for plain task specs read ``.hash``)."""
        return self.task_hash

    @property
    def metadata(self) -> Any:
        """The task's metadata (callers written for plain task specs read ``.metadata``)."""
        return self.spec.metadata

    @cached_property
    def task_hash(self) -> str:
        """The hash recorded with the result: the task's own, plus the protocol's extra rules."""
        if self.unanswered == "none":
            return self.spec.hash
        return sha256_json({"task": self.spec.hash, "unanswered": self.unanswered})


def _as_task(item: TaskSpec | EvalTask) -> EvalTask:
    return item if isinstance(item, EvalTask) else EvalTask(spec=item)


def apply_protocol(
    items: Sequence[TaskSpec | EvalTask], protocol: str | None, tasks_dir: str | os.PathLike[str] | None = None
) -> list[EvalTask]:
    """The tasks under ``protocol`` (None = the default); tasks it does not mention are unchanged."""
    name = protocol or DEFAULT_PROTOCOL
    proto = load_protocol(name, tasks_dir)
    src = f"protocol {name}"
    out: list[EvalTask] = []
    for item in items:
        t = _as_task(item)
        ch = proto.tasks.get(t.task)
        if ch is None:
            out.append(replace(t, protocol=name))
            continue
        if ch.unanswered == "random_letter" and t.spec.metadata.grader != "choice":
            raise ConfigError(f"{src}: unanswered: random_letter needs a multiple-choice task; {t.task} is graded"
                              f" {t.spec.metadata.grader}")
        fb = None
        if ch.fallback is not None:
            fb = EvalTask(spec=overlay(t.spec, ch.fallback.override, src + " fallback"), protocol=name,
                          unanswered=ch.unanswered, note=ch.note)
        out.append(EvalTask(spec=overlay(t.spec, ch.override, src), protocol=name, unanswered=ch.unanswered,
                            fallback=fb, fallback_warning=ch.fallback.warning if ch.fallback else "", note=ch.note))
    return out


def apply_overrides(
    items: Sequence[EvalTask], *, system_instruction: str | None = None, gen_kwargs: Mapping[str, Any] | None = None
) -> list[EvalTask]:
    """Command-line changes to every task (and its fallback): system prompt, main-pass gen kwargs."""
    change: dict[str, Any] = {}
    if system_instruction is not None:
        change["metadata"] = {"system_prompt": system_instruction}
    if gen_kwargs:
        change["generation_kwargs"] = dict(gen_kwargs)
    if not change:
        return list(items)

    def one(t: EvalTask) -> EvalTask:
        fb = one(t.fallback) if t.fallback is not None else None
        return replace(t, spec=overlay(t.spec, change, "command-line overrides"), fallback=fb)

    return [one(t) for t in items]


def select_variant(task: EvalTask, data_dir: str | os.PathLike[str] | None, *, hub_ok: bool) -> EvalTask:
    """The variant whose data is reachable: the task itself, else its fallback (warning recorded).

    With a data directory, "reachable" means the local file exists; without one it means the hub
    may be used (``hub_ok``). A task without a fallback is returned as is (its own loader reports
    missing data).
    """
    if task.fallback is None:
        return task
    reachable = has_local_data(task.spec, data_dir) if data_dir is not None else hub_ok
    if reachable:
        return task
    return replace(task.fallback, warnings=(*task.warnings, task.fallback_warning))


def fallback_on_error(task: EvalTask, error: DataError) -> EvalTask | None:
    """The fallback to use after the primary data failed to load (None when there is none)."""
    if task.fallback is None:
        return None
    why = str(error)
    return replace(task.fallback, warnings=(*task.warnings, f"{task.fallback_warning} ({why})"))


# ----------------------------------------------------------------------------- task lookup
def _dirs(tasks_dir: str | os.PathLike[str] | None, include_paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    dirs = [default_tasks_dir(tasks_dir)]
    for p in include_paths:
        d = Path(p).expanduser()
        if not d.is_dir():
            raise UserError(f"--include-path {p}: not a directory of task YAML files")
        if d.resolve() not in {x.resolve() for x in dirs}:
            dirs.append(d)
    return dirs


def _index(dirs: Sequence[Path], sub: str | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        base = d / sub if sub else d
        for p in sorted(base.glob("*.yaml")) if base.is_dir() else []:
            if p.stem in found:
                kind = "suite" if sub else "task"
                raise UserError(
                    f"{kind} {p.stem!r} is defined twice ({found[p.stem]} and {p}); rename one, or use"
                    " --tasks-dir to replace the shipped tasks instead of --include-path to add to them"
                )
            found[p.stem] = p
    return found


def known_tasks(
    tasks_dir: str | os.PathLike[str] | None = None, include_paths: Sequence[str | os.PathLike[str]] = ()
) -> dict[str, Path]:
    """task name -> file, over the shipped (or ``tasks_dir``) tasks and the include paths."""
    return _index(_dirs(tasks_dir, include_paths), None)


def resolve_specs(
    *,
    suite: str | None = None,
    tasks: str | Sequence[str] | None = None,
    tasks_dir: str | os.PathLike[str] | None = None,
    include_paths: Sequence[str | os.PathLike[str]] = (),
) -> list[TaskSpec]:
    """Task specs for ``--suite`` and/or ``--tasks`` over the shipped tasks plus the include paths."""
    dirs = _dirs(tasks_dir, include_paths)
    task_files = _index(dirs, None)
    suite_files = _index(dirs, SUITES_SUBDIR)
    names: list[str] = []
    if suite:
        if suite not in suite_files:
            close = difflib.get_close_matches(suite, list(suite_files), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown suite {suite!r}; {hint}known suites: {', '.join(sorted(suite_files))}")
        names.extend(load_suite(suite, suite_files[suite].parent.parent).tasks)
    if tasks:
        items = tasks.split(",") if isinstance(tasks, str) else list(tasks)
        names.extend(t.strip() for t in items if t.strip())
    if not names:
        raise UserError("no tasks selected; pass --suite rzero|math|general or --tasks a,b")
    out: list[TaskSpec] = []
    for n in dict.fromkeys(names):
        if n not in task_files:
            close = difflib.get_close_matches(n, list(task_files), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown task {n!r}; {hint}known tasks: {', '.join(sorted(task_files))}")
        out.append(load_task_file(task_files[n]))
    return out


def plan_tasks(
    *,
    suite: str | None = None,
    tasks: str | Sequence[str] | None = None,
    protocol: str | None = None,
    tasks_dir: str | os.PathLike[str] | None = None,
    include_paths: Sequence[str | os.PathLike[str]] = (),
    system_instruction: str | None = None,
    gen_kwargs: Mapping[str, Any] | None = None,
) -> list[EvalTask]:
    """Everything ``eval`` needs to know about its tasks: resolved, under the protocol, overridden."""
    specs = resolve_specs(suite=suite, tasks=tasks, tasks_dir=tasks_dir, include_paths=include_paths)
    planned = apply_protocol(specs, protocol, tasks_dir)
    return apply_overrides(planned, system_instruction=system_instruction, gen_kwargs=gen_kwargs)
