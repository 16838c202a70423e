"""Benchmark task definitions: strict YAML (lm-eval key names), suites, data loading, --limit.

A task file uses the few lm-eval keys we need (``task``, ``dataset_path``, ``dataset_name``,
``test_split``, ``doc_to_text``, ``doc_to_target``, ``doc_to_choice``, ``generation_kwargs``,
``repeats``, ``metadata``); everything of ours lives under ``metadata`` (grader kind, metrics,
version, processor, local file, category field). Validation is strict (pydantic ``extra="forbid"``):
no ``!function`` or other YAML tags, no ``include``, templates are Jinja2 in a sandbox with
``StrictUndefined`` so a field missing from the data is a one-line error. Sampled metrics
(``mean@k``/``maj@k``/``pass@k``, or ``repeats`` > 1) at temperature 0 are refused.

Data: the hub id (``datasets.load_dataset(dataset_path, dataset_name, split=test_split)``) is the
default source; a data directory laid out like ``../shared/benchmarks`` (``--data-dir`` /
``RZERO_DATA_DIR``) replaces it with ``<data_dir>/<metadata.local_file>``. ``--limit N`` draws a
seeded subsample, stratified by ``metadata.category_field`` (proportional allocation, largest
remainders) when the task has one.

Every result records ``metadata.version`` and :func:`task_hash` (sha256 of the canonical JSON of
the parsed definition), so rows made with different definitions are never averaged.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rzero_bench.errors import ConfigError, DataError, UserError
from rzero_bench.resources import shipped_dir
from rzero_bench.store import sha256_json

SUITES_SUBDIR = "suites"
GraderKind = Literal["math", "choice", "exact", "bbeh"]
_METRIC_RE = re.compile(r"^(acc|mean@k|maj@k|pass@k)$")
CHOICE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

__all__ = [
    "DOC_ID_KEY",
    "CATEGORY_KEY",
    "TaskSpec",
    "MetricSpec",
    "SamplingPass",
    "Suite",
    "default_tasks_dir",
    "load_task",
    "load_task_file",
    "load_suite",
    "list_tasks",
    "list_suites",
    "resolve_tasks",
    "load_docs",
    "local_path",
    "subsample",
    "task_hash",
    "list_command",
    "validate_command",
]

DOC_ID_KEY = "_doc_id"
CATEGORY_KEY = "_category"


# ----------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationKwargs(_Strict):
    """lm-eval's ``generation_kwargs`` subset. ``max_gen_toks`` is the completion budget."""

    max_gen_toks: int = Field(4096, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    do_sample: bool | None = None
    until: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> GenerationKwargs:
        if self.do_sample is True and self.temperature == 0:
            raise ValueError("do_sample: true needs temperature > 0")
        return self


class MetricSpec(_Strict):
    """One metric: ``acc`` (greedy, from the main pass) or a sampled ``mean@k``/``maj@k``/``pass@k``."""

    name: str
    k: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if not _METRIC_RE.match(v):
            raise ValueError(f"unknown metric {v!r}; use acc, mean@k, maj@k or pass@k (k as its own field)")
        return v

    @model_validator(mode="after")
    def _sampled(self) -> MetricSpec:
        if self.name == "acc":
            if self.k != 1 or self.temperature != 0:
                raise ValueError("metric acc is the greedy main pass; it takes no k or temperature")
        elif self.temperature == 0:
            raise ValueError(
                f"metric {self.name} (k={self.k}) at temperature 0 would be k copies of a greedy decode;"
                " set temperature > 0"
            )
        return self

    @property
    def label(self) -> str:
        return self.name if self.name == "acc" else self.name.replace("@k", f"@{self.k}")


class TaskMetadata(_Strict):
    """Our own fields (lm-eval keeps free-form data under ``metadata``)."""

    version: str
    grader: GraderKind
    metrics: list[MetricSpec] = Field(default_factory=lambda: [MetricSpec(name="acc", k=1, temperature=0.0, top_p=1.0, top_k=0)], min_length=1)
    processor: Literal["jsonl", "bbeh", "generated"] = "jsonl"
    local_file: str = ""
    generator: str | None = None  # processor "generated": a name in GENERATORS (never an import path)
    generator_kwargs: dict[str, Any] = Field(default_factory=dict)
    category_field: str | None = None
    id_field: str | None = None
    system_prompt: str | None = None
    description: str = ""

    @field_validator("local_file")
    @classmethod
    def _relative(cls, v: str) -> str:
        if Path(v).is_absolute() or ".." in Path(v).parts:
            raise ValueError("local_file must be a path relative to the data directory")
        return v

    @model_validator(mode="after")
    def _source(self) -> TaskMetadata:
        if self.processor == "generated":
            if self.generator not in GENERATORS:
                raise ValueError(f"generator must be one of {sorted(GENERATORS)}, got {self.generator!r}")
        elif not self.local_file:
            raise ValueError("local_file is required (the file's path under the data directory)")
        return self


# Deterministic, built-in datasets a task may name with ``processor: generated`` (no code in YAML).
GENERATORS: dict[str, tuple[str, str]] = {
    "micro_arith": ("rzero_bench.micro.arith", "micro_arith_docs"),
}


def _generate(spec: TaskSpec) -> list[dict[str, Any]]:
    import importlib

    module, func = GENERATORS[str(spec.metadata.generator)]
    rows = getattr(importlib.import_module(module), func)(**spec.metadata.generator_kwargs)
    return [dict(r) for r in rows]


class TaskSpec(_Strict):
    """A validated benchmark task (lm-eval key names)."""

    task: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    dataset_path: str
    dataset_name: str | None = None
    test_split: str = "test"
    doc_to_text: str
    doc_to_target: str
    doc_to_choice: str | list[str] | None = None
    generation_kwargs: GenerationKwargs = Field(default_factory=lambda: GenerationKwargs.model_validate({}))
    repeats: int = Field(1, ge=1)
    metadata: TaskMetadata

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        if self.repeats > 1 and self.generation_kwargs.temperature == 0:
            raise ValueError(
                f"repeats: {self.repeats} at temperature 0 repeats one greedy decode;"
                " set generation_kwargs.temperature > 0 or repeats: 1"
            )
        labels = [m.label for m in self.metadata.metrics]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate metrics {labels}")
        for field in ("doc_to_text", "doc_to_target"):
            _compile(getattr(self, field), field)
        if isinstance(self.doc_to_choice, str):
            _compile(self.doc_to_choice, "doc_to_choice")
        return self

    # -- derived -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.task

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def grader(self) -> str:
        return self.metadata.grader

    @cached_property
    def hash(self) -> str:
        return task_hash(self)

    def passes(self, max_tokens: int | None = None, seed: int = 0, max_samples: int | None = None) -> list[SamplingPass]:
        """Generation passes the metrics need: the main pass (``acc``), then one per sampled setting.

        ``max_samples`` caps k of the sampled metrics (quick runs); their labels show the k used.
        """
        g = self.generation_kwargs
        budget = max_tokens or g.max_gen_toks
        out = [
            SamplingPass(
                name="main",
                n=self.repeats,
                temperature=g.temperature,
                top_p=g.top_p,
                top_k=g.top_k,
                max_tokens=budget,
                stop=tuple(g.until),
                seed=seed,
                metrics=tuple(m for m in self.metadata.metrics if m.name == "acc"),
            )
        ]
        groups: dict[tuple[float, float, int], list[MetricSpec]] = {}
        for m in self.metadata.metrics:
            if m.name != "acc":
                if max_samples is not None and m.k > max_samples:
                    m = m.model_copy(update={"k": max_samples})
                groups.setdefault((m.temperature, m.top_p, m.top_k), []).append(m)
        for (t, p, k), ms in groups.items():
            out.append(
                SamplingPass(
                    name=f"sampled_t{t:g}_p{p:g}" + (f"_k{k}" if k else ""),
                    n=max(m.k for m in ms),
                    temperature=t,
                    top_p=p,
                    top_k=k,
                    max_tokens=budget,
                    stop=tuple(g.until),
                    seed=seed,
                    metrics=tuple(ms),
                )
            )
        if not out[0].metrics and len(out) > 1:
            out = out[1:]  # no acc declared: skip the greedy pass
        return out

    # -- rendering -----------------------------------------------------------------------
    def render_text(self, doc: dict[str, Any]) -> str:
        return _render(self.doc_to_text, doc, self.task, "doc_to_text")

    def render_target(self, doc: dict[str, Any]) -> str:
        return _render(self.doc_to_target, doc, self.task, "doc_to_target").strip()

    def render_choices(self, doc: dict[str, Any]) -> list[str] | None:
        if self.doc_to_choice is None:
            return None
        if isinstance(self.doc_to_choice, list):
            return list(self.doc_to_choice)
        raw = _render(self.doc_to_choice, doc, self.task, "doc_to_choice").strip()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(
                f"task {self.task}: doc_to_choice must render a JSON list (use the |tojson filter), got {raw[:60]!r}"
            ) from None
        if not isinstance(value, list):
            raise ConfigError(f"task {self.task}: doc_to_choice must render a JSON list")
        return [str(v) for v in value]


@dataclass(frozen=True)
class SamplingPass:
    """One generation pass over all items: ``n`` completions each with these sampling params."""

    name: str
    n: int
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: tuple[str, ...]
    seed: int
    metrics: tuple[MetricSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "metrics": [m.model_dump() for m in self.metrics],
        }


class Suite(_Strict):
    suite: str
    description: str = ""
    tasks: list[str] = Field(min_length=1)


# ----------------------------------------------------------------------------- jinja
_ENV: Any = None


def _last_boxed_filter(text: Any) -> str:
    from rzero_bench.parsing import last_boxed

    found = last_boxed(str(text))
    if found is None:
        raise ValueError("no \\boxed{} in the text")
    return found


def _strip_dollars(text: Any) -> str:
    s = str(text).strip()
    while s.startswith("$") and s.endswith("$") and len(s) >= 2:
        s = s[1:-1].strip()
    return s.replace("$", "")


def _env() -> Any:
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        env.filters["last_boxed"] = _last_boxed_filter
        env.filters["strip_dollars"] = _strip_dollars
        env.filters["number"] = _number
        env.globals["letters"] = CHOICE_LETTERS
        _ENV = env
    return _ENV


def _number(value: Any) -> str:
    """Render 27.0 as 27 and keep other values as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_TEMPLATE_CACHE: dict[str, Any] = {}


def _compile(source: str, field: str) -> Any:
    tpl = _TEMPLATE_CACHE.get(source)
    if tpl is None:
        from jinja2 import TemplateSyntaxError

        try:
            tpl = _env().from_string(source)
        except TemplateSyntaxError as e:
            raise ValueError(f"{field}: Jinja syntax error line {e.lineno}: {e.message}") from None
        _TEMPLATE_CACHE[source] = tpl
    return tpl


def _render(source: str, doc: dict[str, Any], task: str, field: str) -> str:
    from jinja2 import TemplateError, UndefinedError

    tpl = _compile(source, field)
    try:
        return str(tpl.render(**{k: v for k, v in doc.items() if not k.startswith("_")}))
    except UndefinedError as e:
        fields = ", ".join(sorted(k for k in doc if not k.startswith("_")))
        raise DataError(
            f"task {task}: {field} uses a field missing from the data ({e.message}); the data has: {fields}"
        ) from None
    except (TemplateError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise DataError(f"task {task}: {field} failed on doc {doc.get(DOC_ID_KEY, '?')}: {e}") from None


# ----------------------------------------------------------------------------- loading YAML
class _TaskLoader(yaml.SafeLoader):
    """SafeLoader that rejects every explicit tag (``!function``, ``!include``, python tags...)."""


def _reject_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    tag = node.tag
    line = node.start_mark.line + 1
    hint = " (lm-eval's !function is not supported: express the logic as a Jinja template)" if "function" in tag else ""
    raise ConfigError(f"YAML tag {tag} at line {line} is not allowed{hint}")


_TaskLoader.add_multi_constructor("!", _reject_tag)
_TaskLoader.add_multi_constructor("tag:yaml.org,2002:python", _reject_tag)


def _read_yaml(path: Path) -> Any:
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


def _pydantic_message(err: ValidationError, model: type[BaseModel]) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, first["loc"][:-1])
        return f"unknown key {loc!r}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if first["type"] == "missing":
        return f"missing required key {loc!r}"
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part)) if hasattr(current, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", None)
        if args:
            ann = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        current = ann
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def parse_task(data: Any, source: str) -> TaskSpec:
    """Validate a parsed YAML mapping; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a task file must be a YAML mapping")
    if "include" in data:
        raise ConfigError(f"{source}: 'include' is not supported; each task file must be self-contained")
    if "!function" in json.dumps(data, default=str):
        raise ConfigError(f"{source}: '!function' is not supported; express the logic as a Jinja template")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {_pydantic_message(e, TaskSpec)}") from None


def load_task_file(path: str | os.PathLike[str]) -> TaskSpec:
    """Load and strictly validate one task YAML file."""
    p = Path(path)
    spec = parse_task(_read_yaml(p), str(p))
    if spec.task != p.stem:
        raise ConfigError(f"{p}: task name {spec.task!r} must match the file name {p.stem!r}")
    return spec


def task_hash(spec: TaskSpec) -> str:
    """sha256 of the canonical JSON of the task definition (comments/formatting do not count)."""
    return sha256_json(spec.model_dump(mode="json"))


def default_tasks_dir(tasks_dir: str | os.PathLike[str] | None = None) -> Path:
    d = Path(tasks_dir) if tasks_dir is not None else shipped_dir("tasks")
    if not d.is_dir():
        raise UserError(f"tasks directory not found: {d}")
    return d


def list_tasks(tasks_dir: str | os.PathLike[str] | None = None) -> list[str]:
    return sorted(p.stem for p in default_tasks_dir(tasks_dir).glob("*.yaml"))


def list_suites(tasks_dir: str | os.PathLike[str] | None = None) -> list[str]:
    return sorted(p.stem for p in (default_tasks_dir(tasks_dir) / SUITES_SUBDIR).glob("*.yaml"))


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def load_task(name: str, tasks_dir: str | os.PathLike[str] | None = None) -> TaskSpec:
    """Load a task by name from ``tasks_dir`` (default: the tasks shipped with the package)."""
    d = default_tasks_dir(tasks_dir)
    path = d / f"{name}.yaml"
    if not path.is_file():
        known = list_tasks(d)
        raise UserError(f"unknown task {name!r}; {_did_you_mean(name, known)}known tasks: {', '.join(known)}")
    return load_task_file(path)


def load_suite(name: str, tasks_dir: str | os.PathLike[str] | None = None) -> Suite:
    d = default_tasks_dir(tasks_dir)
    path = d / SUITES_SUBDIR / f"{name}.yaml"
    if not path.is_file():
        known = list_suites(d)
        raise UserError(f"unknown suite {name!r}; {_did_you_mean(name, known)}known suites: {', '.join(known)}")
    data = _read_yaml(path)
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: {_pydantic_message(e, Suite)}") from None
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


# ----------------------------------------------------------------------------- data
_TRUE = {"1", "true", "yes", "on"}


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def local_path(spec: TaskSpec, data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / spec.metadata.local_file


def has_local_data(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> bool:
    if spec.metadata.processor == "generated":
        return True
    return data_dir is not None and local_path(spec, data_dir).exists()


def _read_local(spec: TaskSpec, data_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    if spec.metadata.processor == "generated":
        return _generate(spec)
    path = local_path(spec, data_dir)
    if not path.exists():
        raise DataError(
            f"task {spec.task}: local data file {path} not found; put {spec.metadata.local_file} under the data"
            f" directory, point --data-dir/RZERO_DATA_DIR elsewhere, or unset it to use the hub ({spec.dataset_path})"
        )
    if spec.metadata.processor == "bbeh":
        return _read_bbeh(path, spec)
    rows: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            if path.suffix == ".json":
                data = json.load(fh)
                rows = list(data if isinstance(data, list) else data.get("examples", []))
            else:
                for line in fh:
                    if line.strip():
                        rows.append(json.loads(line))
    except json.JSONDecodeError as e:
        raise DataError(f"task {spec.task}: {path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise DataError(f"task {spec.task}: {path} is not UTF-8") from None
    return rows


def _read_bbeh(path: Path, spec: TaskSpec) -> list[dict[str, Any]]:
    """BBEH upstream layout: ``<dir>/bbeh_<task>/task.json`` = {"examples": [{"input","target"}]}."""
    rows: list[dict[str, Any]] = []
    task_files = sorted(path.glob("*/task.json")) if path.is_dir() else [path]
    if not task_files:
        raise DataError(f"task {spec.task}: no */task.json under {path}")
    for tf in task_files:
        try:
            data = json.loads(tf.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"task {spec.task}: {tf} is not valid JSON ({e})") from None
        name = tf.parent.name.removeprefix("bbeh_")
        for i, ex in enumerate(data.get("examples", [])):
            row = {"input": ex["input"], "target": ex["target"], "bbeh_task": name}
            row[DOC_ID_KEY] = f"{name}/{i}"
            rows.append(row)
    return rows


def _read_hub(spec: TaskSpec) -> list[dict[str, Any]]:
    if _offline():
        raise DataError(
            f"task {spec.task}: the hub dataset {spec.dataset_path} cannot be reached offline (HF_HUB_OFFLINE/"
            "HF_DATASETS_OFFLINE is set); set RZERO_DATA_DIR or pass --data-dir to a local mirror"
            " laid out like ../shared/benchmarks"
        )
    try:
        import datasets
    except ImportError:  # pragma: no cover
        raise UserError("the 'datasets' package is required to load tasks from the hub") from None
    try:
        ds = datasets.load_dataset(spec.dataset_path, spec.dataset_name, split=spec.test_split)
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one line
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise DataError(
            f"task {spec.task}: could not load {spec.dataset_path} from the hub ({first}); set RZERO_DATA_DIR"
            " or pass --data-dir to a local mirror"
        ) from None
    rows = [dict(r) for r in ds]
    if spec.metadata.processor == "bbeh":
        for i, r in enumerate(rows):
            name = str(r.get("task", r.get("bbeh_task", "bbeh"))).replace(" ", "_").removeprefix("bbeh_")
            r.setdefault("bbeh_task", name)
            r[DOC_ID_KEY] = f"{name}/{i}"
    return rows


def subsample(docs: list[dict[str, Any]], limit: int | None, seed: int, category_field: str | None) -> list[dict[str, Any]]:
    """Seeded subsample of ``limit`` docs, stratified by category (largest-remainder allocation).

    Keeps the original order of the chosen docs. ``limit`` >= len(docs) or None returns all.
    """
    if limit is None or limit >= len(docs):
        return list(docs)
    rng = random.Random(seed)
    if not category_field:
        idx = sorted(rng.sample(range(len(docs)), limit))
        return [docs[i] for i in idx]
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        groups.setdefault(str(d.get(CATEGORY_KEY, "")), []).append(i)
    names = sorted(groups)
    total = len(docs)
    quotas = {c: limit * len(groups[c]) / total for c in names}
    alloc = {c: math.floor(q) for c, q in quotas.items()}
    left = limit - sum(alloc.values())
    tiebreak = {c: rng.random() for c in names}
    for c in sorted(names, key=lambda c: (-(quotas[c] - alloc[c]), tiebreak[c]))[:left]:
        alloc[c] += 1
    chosen: list[int] = []
    for c in names:
        chosen.extend(rng.sample(groups[c], alloc[c]))
    return [docs[i] for i in sorted(chosen)]


def load_docs(
    spec: TaskSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The task's items (dicts with the dataset's fields plus ``_doc_id`` and ``_category``)."""
    if spec.metadata.processor == "generated":
        rows = _generate(spec)
    else:
        rows = _read_local(spec, data_dir) if data_dir is not None else _read_hub(spec)
    id_field = spec.metadata.id_field
    cat_field = spec.metadata.category_field
    for i, r in enumerate(rows):
        if DOC_ID_KEY not in r:
            if id_field is not None and id_field in r:
                r[DOC_ID_KEY] = str(r[id_field])
            else:
                r[DOC_ID_KEY] = str(i)
        if cat_field is not None:
            if cat_field not in r:
                raise DataError(f"task {spec.task}: category_field {cat_field!r} is missing from the data")
            r[CATEGORY_KEY] = str(r[cat_field])
    return subsample(rows, limit, seed, cat_field)


# ----------------------------------------------------------------------------- commands
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
            items = str(len(_generate(spec)))
        elif data_dir is not None and has_local_data(spec, data_dir):
            try:
                items = str(len(_read_local(spec, data_dir)))
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
