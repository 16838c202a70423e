"""Model names: bare names → hub ids, did-you-mean, the hub check, and the model's shape.

``--model`` accepts ``tiny:<size>`` / ``micro:<size>[@<minutes>|@demo]`` (built offline on CPU), a local
``save_pretrained`` directory, a hub id (``Qwen/Qwen3-4B-Base``) or a *bare name* of one of the base
models R-Zero reports on (``results/reference/*.json``): ``Qwen3-4B-Base``, ``Qwen3-8B-Base``,
``OctoThinker-3B``, ``OctoThinker-8B``. A bare name resolves to its hub id and the resolution is
said in one line; any other bare name is refused with the closest known name.

The hub check runs before anything is written: with ``HF_HUB_OFFLINE=1`` it looks for the model's
``config.json`` in the local Hugging Face cache; otherwise it makes one HTTP request bounded by a
few seconds (``GET {HF_ENDPOINT}/api/models/<id>``), so a wrong id or an unreachable hub is
reported at once instead of after the library's own retries.

:class:`ModelShape` carries what the preflight's memory estimate needs (parameters, layers, hidden
size, vocabulary, context length). It is read from the model's ``config.json`` when one is at hand
(local directory or cache) and otherwise taken from :data:`KNOWN_MODELS`, which records the
published ``config.json`` values of the reference models.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rzero_bench.errors import UserError

__all__ = [
    "KNOWN_MODELS",
    "HubCheck",
    "KnownModel",
    "ModelShape",
    "Resolution",
    "check_hub",
    "hub_offline",
    "is_small_model",
    "model_shape",
    "resolve_name",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelShape:
    """Decoder-only transformer dimensions (the fields of a Qwen3 / Llama ``config.json``)."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_embeddings: bool
    max_position_embeddings: int | None = None

    @property
    def params(self) -> int:
        """Parameter count: embeddings (+ an untied LM head) + per layer attention, SwiGLU MLP, norms."""
        h, q, kv = self.hidden_size, self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        attn = h * q + 2 * h * kv + q * h + 2 * self.head_dim  # q, k, v, o projections; q/k norms (Qwen3)
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        per_layer = attn + mlp + 2 * h  # input and post-attention RMSNorm
        embed = self.vocab_size * h * (1 if self.tie_embeddings else 2)
        return embed + self.num_layers * per_layer + h

    @property
    def kv_bytes_per_token(self) -> int:
        """bf16 key + value cache per token over all layers (what vLLM reserves per token)."""
        return 2 * 2 * self.num_layers * self.num_kv_heads * self.head_dim

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ModelShape:
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        return cls(
            hidden_size=hidden,
            num_layers=int(cfg["num_hidden_layers"]),
            intermediate_size=int(cfg["intermediate_size"]),
            num_heads=heads,
            num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab_size=int(cfg["vocab_size"]),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            max_position_embeddings=int(cfg["max_position_embeddings"]) if cfg.get("max_position_embeddings") else None,
        )


@dataclass(frozen=True)
class KnownModel:
    """A base model R-Zero reports on: its bare name, hub id and published shape."""

    name: str
    hub_id: str
    shape: ModelShape
    source: str  # where the hub id comes from


# Shapes: the published config.json of each hub repository (Qwen3: hidden 2560/4096, 36 layers,
# GQA 32 query / 8 key-value heads of 128, vocab 151936, 32768 positions; OctoThinker is
# mid-trained from Llama-3.2-3B / Llama-3.1-8B and keeps their shapes). The preflight prefers a
# real config.json (local directory or cache) over these values.
KNOWN_MODELS: dict[str, KnownModel] = {
    m.name.lower(): m
    for m in (
        KnownModel("Qwen3-4B-Base", "Qwen/Qwen3-4B-Base",
                   ModelShape(2560, 36, 9728, 32, 8, 128, 151936, True, 32768),
                   "the paper's main model, results/reference/qwen3-4b-base.json"),
        KnownModel("Qwen3-8B-Base", "Qwen/Qwen3-8B-Base",
                   ModelShape(4096, 36, 12288, 32, 8, 128, 151936, False, 32768),
                   "results/reference/qwen3-8b-base.json"),
        KnownModel("OctoThinker-3B", "OctoThinker/OctoThinker-3B-Hybrid-Base",
                   ModelShape(3072, 28, 8192, 24, 8, 128, 128256, True, 131072),
                   "the paper names OctoThinker-3B; the Hybrid-Base release is the one R-Zero runs use"),
        KnownModel("OctoThinker-8B", "OctoThinker/OctoThinker-8B-Hybrid-Base",
                   ModelShape(4096, 32, 14336, 32, 8, 128, 128256, False, 131072),
                   "the paper names OctoThinker-8B; the Hybrid-Base release is the one R-Zero runs use"),
        # not a reference model: the GPU smoke test's shape (perf/gpu_smoke.py)
        KnownModel("Qwen3-0.6B-Base", "Qwen/Qwen3-0.6B-Base",
                   ModelShape(1024, 28, 3072, 16, 8, 128, 151936, True, 32768),
                   "Qwen3 release; used for the GPU smoke test's shape"),
    )
}
_BY_HUB_ID = {m.hub_id.lower(): m for m in KNOWN_MODELS.values()}


@dataclass(frozen=True)
class Resolution:
    """What a ``--model`` spec means."""

    spec: str  # as given
    model: str  # what the run uses: hub id, absolute path, or the tiny:/micro: spec
    kind: Literal["tiny", "micro", "path", "hub"]
    note: str | None = None  # one line, e.g. "Qwen3-4B-Base → Qwen/Qwen3-4B-Base (...)"
    known: KnownModel | None = None


def resolve_name(spec: str) -> Resolution:
    """Resolve a ``--model`` value (see the module docstring); a bad one is a one-line UserError."""
    spec = str(spec).strip()
    if not spec:
        raise UserError("--model is empty; give a hub id (Qwen/Qwen3-4B-Base), a bare name (Qwen3-4B-Base), "
                        "a local directory or tiny:s / micro:s")
    for kind in ("tiny", "micro"):
        if spec.startswith(f"{kind}:"):
            size, at, budget = spec.split(":", 1)[1].partition("@")
            if not size:
                raise UserError(f"bad model spec {spec!r}: expected {kind}:<size>")
            if kind == "micro" and at:
                from rzero_bench.micro.recipe import parse_budget

                parse_budget(budget, spec)  # micro:s@4 or micro:s@demo; anything else fails here
            return Resolution(spec, spec, kind)  # type: ignore[arg-type]
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model path {path} has no config.json; point --model at a save_pretrained directory")
        return Resolution(spec, str(path.resolve()), "path")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise UserError(f"model path not found: {spec}")
    known = KNOWN_MODELS.get(spec.lower())
    if known is not None:
        return Resolution(spec, known.hub_id, "hub", f"model: {spec} → {known.hub_id} ({known.source})", known)
    if "/" in spec:
        if not _HUB_ID.match(spec):
            raise UserError(f"model {spec!r} is neither an existing directory nor a hub id of the form owner/name")
        return Resolution(spec, spec, "hub", None, _BY_HUB_ID.get(spec.lower()))
    names = [m.name for m in KNOWN_MODELS.values()]
    close = difflib.get_close_matches(spec.lower(), [n.lower() for n in names], n=1, cutoff=0.5)
    hint = f"did you mean {KNOWN_MODELS[close[0]].name!r} ({KNOWN_MODELS[close[0]].hub_id})? " if close else ""
    raise UserError(f"unknown model {spec!r}: not a directory, not a hub id (owner/name) and not a known bare name; "
                    f"{hint}known: {', '.join(names)}; or tiny:s / micro:s for CPU")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HubCheck:
    """Outcome of :func:`check_hub`. ``ok`` False with ``local`` True: only another machine can tell."""

    status: Literal["cached", "reachable", "missing", "uncached-offline", "unreachable"]
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in ("cached", "reachable")

    @property
    def local(self) -> bool:
        """True when the failure is about this machine (no cache, no network), not about the id."""
        return self.status in ("uncached-offline", "unreachable")


def cached_config(hub_id: str) -> Path | None:
    """The cached ``config.json`` of ``hub_id`` in the local Hugging Face cache, if any."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    found = try_to_load_from_cache(hub_id, "config.json")
    return Path(found) if isinstance(found, str) else None


def check_hub(hub_id: str, *, timeout: float = 4.0) -> HubCheck:
    """Is ``hub_id`` usable here? Local cache first; online, one request bounded by ``timeout`` seconds."""
    if cached_config(hub_id) is not None:
        return HubCheck("cached", f"{hub_id} is in the local Hugging Face cache")
    if hub_offline():
        return HubCheck("uncached-offline",
                        f"{hub_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; download it where the "
                        f"hub is reachable (huggingface-cli download {hub_id}) or pass --model a local directory")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/api/models/{hub_id}"
    box: dict[str, Any] = {}

    def probe() -> None:
        import httpx

        headers = {}
        try:
            from huggingface_hub import get_token

            token = get_token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
        except ImportError:  # pragma: no cover
            pass
        try:
            box["status"] = httpx.get(url, timeout=timeout, headers=headers, follow_redirects=True).status_code
        except httpx.HTTPError as e:
            box["error"] = type(e).__name__

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    status = box.get("status")
    if status == 200:
        return HubCheck("reachable", f"{hub_id} found on {endpoint}")
    if status in (401, 403, 404):
        return HubCheck("missing", f"{hub_id} was not found on {endpoint} (HTTP {status}: no such repository, "
                                   "or a gated one without a token); check the spelling")
    why = f"HTTP {status}" if status else box.get("error", f"no answer within {timeout:g}s")
    return HubCheck("unreachable", f"could not check {hub_id} on {endpoint} ({why}); set HF_HUB_OFFLINE=1 to use the "
                                   "local cache, or pass --model a local directory")


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("text_config"), dict):
        data = {**data["text_config"], **{k: v for k, v in data.items() if k == "tie_word_embeddings"}}
    return data if isinstance(data, dict) else None


def model_shape(res: Resolution) -> tuple[ModelShape | None, str]:
    """The model's shape and where it came from ("config.json", "known", or why it is unknown)."""
    path: Path | None = None
    if res.kind == "path":
        path = Path(res.model) / "config.json"
    elif res.kind == "hub":
        path = cached_config(res.model)
    if path is not None:
        cfg = _read_config(path)
        if cfg is not None:
            try:
                return ModelShape.from_config(cfg), f"{path}"
            except (KeyError, TypeError, ValueError):
                pass
    if res.known is not None:
        return res.known.shape, f"published config.json of {res.known.hub_id}"
    if res.kind in ("tiny", "micro"):
        return _built_shape(res)
    return None, "unknown (no config.json at hand)"


def _built_shape(res: Resolution) -> tuple[ModelShape | None, str]:
    """The shape of a model this project builds (tiny:/micro:), from its size table: known before the build."""
    from rzero_bench.micro.recipe import MICRO_SIZES
    from rzero_bench.training.tiny import SIZES

    size = res.spec.split(":", 1)[1].partition("@")[0]  # micro:s@4: 4 nominal minutes of pretraining
    table, vocab = (MICRO_SIZES, 512) if res.kind == "micro" else (SIZES, 768)
    spec = table.get(size)
    if spec is None:
        return None, f"unknown ({res.kind} size {size!r})"
    shape = ModelShape(spec.hidden_size, spec.num_hidden_layers, spec.intermediate_size, spec.num_attention_heads,
                       spec.num_key_value_heads, spec.head_dim, vocab, True, spec.max_position_embeddings)
    return shape, f"the {res.kind} size table ({res.kind}:{size})"


# Below this many parameters a model is "small": the tiny/micro CPU presets suit it.
SMALL_MODEL_PARAMS = 50_000_000


def is_small_model(res: Resolution) -> bool:
    """tiny:/micro: specs, and local directories whose config.json gives under 50M parameters (or no
    shape at all: a size we cannot tell does not change the CPU default). Hub ids are real models."""
    if res.kind in ("tiny", "micro"):
        return True
    if res.kind == "path":
        shape, _ = model_shape(res)
        return shape is None or shape.params < SMALL_MODEL_PARAMS
    return False
