"""Run configuration: strict pydantic models, presets and YAML loading.

Defaults follow the R-Zero paper (arXiv 2508.05004). Every place where the official code differs
is a named option; the ``official-code`` preset (``variant: official-code``) sets them all:

| option | paper | official code |
|---|---|---|
| ``selfplay.reward_variant`` | ``paper``: r = 1 - 2|p - 1/2| | ``official``: r = min(p, 1 - p) |
| ``selfplay.m`` | 10 | 9 |
| ``selfplay.filter_mode`` | ``paper``: |p - 1/2| <= delta (0.25) | ``band``: 0.3 <= p <= 0.8 |
| ``selfplay.format_penalty`` | 0 | -1 |
| ``selfplay.none_is_answer`` | False | True (the string "None" is voted on) |
| ``selfplay.answer_match_gate`` | False | True in the first release (challenger's own answer must match the majority) |
| ``solver.format_weight`` | 0 | 0.1 (reward 0.9*acc + 0.1*format) |

Presets live as YAML in the top-level ``trainers/<name>.yaml`` (shipped inside the wheel); a user
config may start from a preset (``preset: tiny``) and override any field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rzero_bench.errors import ConfigError
from rzero_bench.resources import shipped_dir



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class RoleConfig(_Strict):
    """GRPO settings for one role (challenger or solver)."""

    lr: float = 1e-6
    beta: float = 1e-2  # KL coefficient
    num_generations: int = Field(4, ge=1)  # group size
    prompts_per_step: int = Field(1, ge=1)
    max_steps: int = Field(5, ge=1)
    max_completion_length: int = Field(4096, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    loss_type: str = "grpo"
    gradient_accumulation_steps: int = Field(1, ge=1)
    format_weight: float = Field(0.0, ge=0, le=1)  # solver only: reward = (1-w)*acc + w*format
    extra: dict[str, Any] = Field(default_factory=dict)  # passed through to GRPOConfig


class SelfPlayConfig(_Strict):
    """Question generation, self-consistency voting, challenger reward and filtering."""

    num_questions: int = Field(8000, ge=1)  # candidate questions generated per iteration
    question_max_tokens: int = Field(4096, ge=1)
    question_temperature: float = Field(1.0, gt=0)
    m: int = Field(10, ge=1)  # solver samples per question
    solver_temperature: float = Field(1.0, gt=0)
    solver_max_tokens: int = Field(4096, ge=1)
    reward_variant: Literal["paper", "official"] = "paper"
    format_penalty: float = 0.0  # reward for a malformed challenger output
    require_boxed: bool = True  # format gate also requires the challenger's \boxed answer
    lam: float = Field(1.0, ge=0)  # repetition penalty scale
    bleu_threshold: float = Field(0.5, gt=0, le=1)
    none_is_answer: bool = False
    answer_match_gate: bool = False
    filter_mode: Literal["paper", "band"] = "paper"
    delta: float = Field(0.25, ge=0, le=0.5)
    band: tuple[float, float] = (0.3, 0.8)
    dedup: bool = True
    min_kept: int = Field(1, ge=1)  # fewer surviving questions than this is an error
    grader: Literal["math", "exact"] = "math"

    @field_validator("band")
    @classmethod
    def _band_ok(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 <= lo <= hi <= 1:
            raise ValueError("band must satisfy 0 <= low <= high <= 1")
        return v


class EvalConfig(_Strict):
    """Which tasks each iteration's solver is scored on."""

    suite: str | None = "rzero"
    tasks: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    seed: int = 0
    batch_size: int = Field(16, ge=1)
    max_samples: int | None = Field(None, ge=1)  # cap k of sampled metrics (mean@k, maj@k) for quick runs


class ProbeConfig(_Strict):
    """Probe questions with known answers mixed into self-consistency (the `reference` oracle)."""

    task: str = "gsm8k"
    n: int = Field(0, ge=0)
    seed: int = 0


class LayoutConfig(_Strict):
    """Where generation runs. On CPU everything is `hf` in process.

    GPU node (official layout, 8 GPUs): ``generation_backend: served`` starts ``vllm serve`` for the
    current solver checkpoint on ``serve_gpus`` (4 GPUs) for each stage that samples it and reaches it
    through the ``openai`` backend, while the challenger trains on the other 4 under ``accelerate``;
    ``openai`` uses a server you run yourself (``solver_server_url``); on one GPU: ``vllm`` in process
    with ``gpu_memory_utilization``.
    """

    generation_backend: Literal["hf", "vllm", "openai", "served"] = "hf"
    solver_server_url: str | None = None  # openai: an already running server for the solver
    serve_command: str = "vllm serve {model} --host 127.0.0.1 --port {port} --served-model-name {name}"
    serve_gpus: str | None = None  # served: CUDA_VISIBLE_DEVICES of the solver server, e.g. "4,5,6,7"
    served_solver_name: str | None = None  # model name the server knows the current solver by
    api_key_env: str = "OPENAI_API_KEY"
    gpu_memory_utilization: float = Field(0.4, gt=0, le=1)
    trainer_use_vllm: bool = False
    accelerate_config: str | None = None  # run GRPO stages under `accelerate launch` with this config
    challenger_gpus: str | None = None  # CUDA_VISIBLE_DEVICES of challenger GRPO (the others serve the solver)
    solver_gpus: str | None = None  # CUDA_VISIBLE_DEVICES of solver GRPO (None: all)
    launch_prefix: str | None = None  # several nodes: e.g. "srun --nodes=2 --ntasks-per-node=1"
    cpu_threads: int | None = Field(1, ge=1)  # torch threads for CPU generation (1 is fastest for tiny models)
    description: str = "single process; generation with transformers"


class ControlsConfig(_Strict):
    """Control experiments that should break R-Zero (they exist to show that the gains are real)."""

    shuffle_labels: bool = False  # permute the pseudo-labels among the kept questions before solver GRPO
    flip_challenger_reward: bool = False  # train the challenger on the negated reward


class RunConfig(_Strict):
    """A complete, resolved R-Zero run."""

    name: str = "rzero"
    variant: Literal["paper", "official-code"] = "paper"
    model: str = "Qwen/Qwen3-4B-Base"  # hub id, local path, or tiny:<size> / micro:<size>
    iterations: int = Field(3, ge=0)
    seed: int = 0
    challenger: RoleConfig = Field(default_factory=lambda: RoleConfig(num_generations=4, max_steps=5))
    solver: RoleConfig = Field(default_factory=lambda: RoleConfig(num_generations=5, max_steps=15))
    selfplay: SelfPlayConfig = Field(default_factory=SelfPlayConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    prompts: dict[str, str] = Field(default_factory=lambda: {"challenger": "challenger", "solver": "solver"})
    oracle: str | None = None  # reference | exact-arith | openai:<model>[@url] | hf:<path>
    probes: ProbeConfig = Field(default_factory=ProbeConfig)
    layout: LayoutConfig = Field(default_factory=LayoutConfig)
    controls: ControlsConfig = Field(default_factory=ControlsConfig)

    @field_validator("prompts")
    @classmethod
    def _prompts_ok(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - {"challenger", "solver"}
        if unknown:
            raise ValueError(f"unknown prompt role(s) {sorted(unknown)}; expected challenger, solver")
        return {"challenger": "challenger", "solver": "solver", **v}

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        for role in ("challenger", "solver"):
            rc: RoleConfig = getattr(self, role)
            if rc.prompts_per_step * rc.num_generations < rc.num_generations:
                raise ValueError(f"{role}: batch too small")
        if self.eval.suite is None and not self.eval.tasks:
            self.eval.suite = "rzero"
        return self


def preset_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir("trainers").glob("*.yaml"))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    return data


def preset_dict(name: str) -> dict[str, Any]:
    path = shipped_dir("trainers") / f"{name}.yaml"
    if not path.is_file():
        import difflib

        names = preset_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown preset {name!r}{hint}; available: {', '.join(names)}")
    data = _read_yaml(path)
    parent = data.pop("preset", None)
    if parent:
        data = _deep_merge(preset_dict(parent), data)
    data.setdefault("name", name)
    return data


def _apply_override(data: dict[str, Any], spec: str) -> None:
    if "=" not in spec:
        raise ConfigError(f"--set expects key=value, got {spec!r}")
    key, raw = spec.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {p} is not a section")
    node[parts[-1]] = value


def _format_validation(e: ValidationError, source: str) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown config key {loc!r}"
    return f"{source}: {loc}: {err['msg']}"


def load_config(
    path: Path | None = None,
    *,
    preset: str | None = None,
    model: str | None = None,
    iterations: int | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Resolve a run config: preset (default tiny) ← YAML file ← CLI options ← --set overrides."""
    data: dict[str, Any] = {}
    file_data: dict[str, Any] = {}
    if path is not None:
        file_data = _read_yaml(Path(path))
    base = preset or file_data.pop("preset", None) or ("tiny" if path is None else None)
    if preset and "preset" in file_data:
        file_data.pop("preset")
    if base:
        data = preset_dict(base)
    data = _deep_merge(data, file_data)
    if model is not None:
        data["model"] = model
    if iterations is not None:
        data["iterations"] = iterations
    for spec in overrides or []:
        _apply_override(data, spec)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, str(path) if path else f"preset {base}")) from None


def config_hash(cfg: RunConfig) -> str:
    """Hash of everything that determines a run's results, except ``iterations``: a finished run
    can be extended with more iterations (the first k iterations do not depend on the total)."""
    from rzero_bench.store import sha256_json

    return sha256_json(cfg.model_dump(mode="json", exclude={"iterations"}))
