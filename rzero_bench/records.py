"""Frozen record types shared by every layer.

Every record is a frozen dataclass with ``to_dict``/``from_dict`` so it round-trips through
JSON lines without pickling. Nothing here imports torch or any heavy library.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")

VerdictStatus = Literal["ok", "timeout", "unparseable", "error"]
GradeKind = Literal["math", "choice", "exact", "bbeh"]


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            v = data[f.name]
            if isinstance(v, list) and f.name in _TUPLE_FIELDS:
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            kwargs[f.name] = v
    return cls(**kwargs)


_TUPLE_FIELDS = {"texts", "finish_reasons", "completion_tokens", "answers", "counts", "classes", "stop", "messages"}


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload,no-any-return]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Verdict(_Record):
    """Outcome of grading one prediction against one reference.

    ``correct`` is None when the status is not ``ok`` (timeout, unparseable, error).
    """

    correct: bool | None
    status: VerdictStatus = "ok"
    method: str = ""  # e.g. "exact", "normalized", "math-verify", "choice"
    detail: str = ""


@dataclass(frozen=True)
class SamplingParams(_Record):
    """Sampling parameters for one request. temperature 0 means greedy."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = disabled
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if isinstance(self.stop, list):
            object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass(frozen=True)
class GenerationRequest(_Record):
    """Chat messages plus sampling parameters. ``id`` is carried through to the result."""

    messages: tuple[dict[str, str], ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    id: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.messages, list):
            object.__setattr__(self, "messages", tuple(self.messages))
        if isinstance(self.params, dict):
            object.__setattr__(self, "params", SamplingParams.from_dict(self.params))


@dataclass(frozen=True)
class Generation(_Record):
    """``n`` completions for one request, with finish reasons ("stop" | "length") and token counts.

    ``prompt_cut``: prompt tokens the backend dropped from the left so that prompt + max_tokens fit
    the model's context (the hf backend; lm-eval's convention); ``prompt_tokens`` counts what was kept.
    """

    texts: tuple[str, ...]
    finish_reasons: tuple[str, ...] = ()
    completion_tokens: tuple[int, ...] = ()
    prompt_tokens: int = 0
    id: str = ""
    prompt_cut: int = 0


@dataclass(frozen=True)
class Question(_Record):
    """A question written by the challenger (or a probe with a known reference)."""

    id: str
    text: str
    challenger_answer: str | None = None  # the \boxed{} the challenger wrote, if any
    iteration: int = 0
    source: str = "challenger"  # "challenger" | "probe:<task>"
    reference: str | None = None  # only for probes / oracle-known questions
    raw: str = ""  # full challenger completion


@dataclass(frozen=True)
class Attempt(_Record):
    """One solver sample for a question."""

    question_id: str
    index: int
    completion: str
    answer: str | None  # last \boxed{} content, None = no answer
    finish_reason: str = "stop"
    tokens: int = 0


@dataclass(frozen=True)
class Vote(_Record):
    """Self-consistency of m answers: majority pseudo-label and its agreement p-hat = count / m."""

    question_id: str
    label: str | None  # None when no sample produced an answer
    p_hat: float
    m: int
    answered: int
    counts: tuple[int, ...] = ()  # cluster sizes, largest first
    answers: tuple[str, ...] = ()  # cluster representatives, aligned with counts


@dataclass(frozen=True)
class ChallengerScore(_Record):
    """Reward breakdown for one challenger completion."""

    text: str
    well_formed: bool
    p_hat: float | None
    uncertainty: float
    repetition: float
    reward: float
    cluster: int = -1


@dataclass(frozen=True)
class Metric(_Record):
    """A metric value with its standard error over ``n`` items."""

    value: float
    stderr: float
    n: int


@dataclass(frozen=True)
class EvalResult(_Record):
    """One task's evaluation of one model; written as results/<name>/<task>.json.

    ``package_versions`` are the installed versions of the packages that affect results (schema 1
    called it ``versions``, which lm-eval uses for task versions; old files are still read).
    ``protocol`` names the evaluation protocol (``paper`` | ``official``, see
    :mod:`rzero_bench.protocols`); ``warnings`` lists what deviated from it (e.g. a data fallback);
    ``data_source`` says where the items came from (hub id@revision, or mirror file + sha256).
    """

    task: str
    task_version: str
    task_hash: str
    model: str
    backend: str
    metrics: dict[str, dict[str, float]]  # name -> {"value", "stderr", "n"}
    sampling: dict[str, Any]
    counts: dict[str, int]  # timeouts, unparseable, no_answer, errors, items
    boxed_rate: float
    tokens: int
    wall_time_s: float
    package_versions: dict[str, str]
    limit: int | None = None
    seed: int = 0
    subtasks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    protocol: str = "paper"
    warnings: list[str] = field(default_factory=list)
    data_source: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 2

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:  # type: ignore[override]
        """Read a result; schema-1 files (``versions``, no protocol) are accepted as written."""
        if "versions" in data and "package_versions" not in data:
            data = {k: v for k, v in data.items() if k != "versions"} | {"package_versions": data["versions"]}
        return _from_dict(cls, data)
