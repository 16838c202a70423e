"""Task schema: the strict pydantic model of a task YAML, its validation and its hash.

A task file uses the few lm-eval keys we need (``task``, ``dataset_path``, ``dataset_name``,
``test_split``, ``doc_to_text``, ``doc_to_target``, ``doc_to_choice``, ``generation_kwargs``,
``repeats``, ``metadata``); everything of ours lives under ``metadata`` (grader kind, metrics,
version, processor, local file, category field). Validation is strict (pydantic ``extra="forbid"``):
unknown keys, ``include`` and ``!function`` are refused with a one-line message, and every template
must compile (:mod:`rzero_bench.tasks.render`). Sampled metrics (``mean@k``/``maj@k``/``pass@k``, or
``repeats`` > 1) at temperature 0 are refused: they would be k copies of one greedy decode.

Every result records ``metadata.version`` and :func:`task_hash` = sha256 of the canonical JSON of
the parsed definition (``model_dump(mode="json")``; comments and formatting do not count), so rows
made with different definitions are never averaged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rzero_bench.errors import ConfigError
from rzero_bench.store import sha256_json
from rzero_bench.tasks.generators import GENERATORS
from rzero_bench.tasks.render import compile_template, render_template

__all__ = [
    "GraderKind",
    "GenerationKwargs",
    "MetricSpec",
    "TaskMetadata",
    "TaskSpec",
    "SamplingPass",
    "Suite",
    "parse_task",
    "validation_message",
    "task_hash",
]

GraderKind = Literal["math", "choice", "exact", "bbeh"]
_METRIC_RE = re.compile(r"^(acc|mean@k|maj@k|pass@k)$")


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
    # the hub dataset's commit (``datasets.load_dataset(..., revision=...)``); None: the hub's current
    # state, resolved and recorded by ``rzero-bench data fetch`` (SOURCES.json in the mirror)
    revision: str | None = Field(None, pattern=r"^[0-9a-f]{40}$")

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
            compile_template(getattr(self, field), field)
        if isinstance(self.doc_to_choice, str):
            compile_template(self.doc_to_choice, "doc_to_choice")
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
        return render_template(self.doc_to_text, doc, self.task, "doc_to_text")

    def render_target(self, doc: dict[str, Any]) -> str:
        return render_template(self.doc_to_target, doc, self.task, "doc_to_target").strip()

    def render_choices(self, doc: dict[str, Any]) -> list[str] | None:
        if self.doc_to_choice is None:
            return None
        if isinstance(self.doc_to_choice, list):
            return list(self.doc_to_choice)
        raw = render_template(self.doc_to_choice, doc, self.task, "doc_to_choice").strip()
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
    """A named list of tasks (``tasks/suites/<suite>.yaml``)."""

    suite: str
    description: str = ""
    tasks: list[str] = Field(min_length=1)


def validation_message(err: ValidationError, model: type[BaseModel]) -> str:
    """The first validation error as one line; an unknown key lists the keys allowed at that level."""
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
        raise ConfigError(f"{source}: {validation_message(e, TaskSpec)}") from None


def task_hash(spec: TaskSpec) -> str:
    """sha256 of the canonical JSON of the task definition (comments/formatting do not count).

    An unset ``metadata.revision`` is left out, so tasks defined before the field existed keep
    their hash; a pinned revision is part of the definition.
    """
    data = spec.model_dump(mode="json")
    if data["metadata"].get("revision") is None:
        data["metadata"].pop("revision", None)
    return sha256_json(data)
