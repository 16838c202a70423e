"""Generation backends and the factory that builds one by name.

``make_generator(backend, model, **options)`` imports the concrete module only when it is asked
for, so importing :mod:`rzero_bench.backends` stays cheap: no torch, transformers, vllm or httpx.

Backends (see DESIGN.md §3):

- ``hf``: transformers ``generate`` on CPU or GPU (``rzero_bench.backends.hf.HFGenerator``);
- ``vllm``: offline ``vllm.LLM``, GPU only (``rzero_bench.backends.vllm.VLLMGenerator``);
- ``openai``: any OpenAI-compatible HTTP server (``rzero_bench.backends.openai.OpenAIGenerator``);
- ``scripted``: canned outputs for tests (``rzero_bench.backends.scripted.ScriptedGenerator``);
- ``served``: starts ``vllm serve`` (or any command) for a checkpoint and talks ``openai`` to it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from rzero_bench.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from rzero_bench.backends.base import Generator

# backend name -> (module, class). Modules are imported lazily by make_generator.
BACKENDS: dict[str, tuple[str, str]] = {
    "hf": ("rzero_bench.backends.hf", "HFGenerator"),
    "vllm": ("rzero_bench.backends.vllm", "VLLMGenerator"),
    "openai": ("rzero_bench.backends.openai", "OpenAIGenerator"),
    "scripted": ("rzero_bench.backends.scripted", "ScriptedGenerator"),
    "served": ("rzero_bench.backends.served", "ServedGenerator"),
}

__all__ = ["BACKENDS", "backend_class", "make_generator"]


def backend_class(backend: str) -> type:
    """Import and return the generator class for a backend name (UserError if unknown)."""
    key = str(backend).strip().lower()
    if key not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[key]
    module = importlib.import_module(module_name)
    cls: type = getattr(module, class_name)
    return cls


def make_generator(backend: str, model: str, **options: Any) -> Generator:
    """Build the generator for ``backend`` serving ``model``; ``options`` go to its constructor.

    For ``scripted``, ``model`` becomes the generator's ``model_id`` and the canned outputs are
    passed as ``responder=...``. Unknown backends or options raise :class:`UserError`.
    """
    key = str(backend).strip().lower()
    cls = backend_class(key)
    if key == "scripted":
        args: tuple[Any, ...] = ()
        options = dict(options)
        options.setdefault("model_id", model)
    else:
        args = (model,)
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as exc:
        params = [
            p.name
            for p in inspect.signature(cls).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "model"
        ]
        raise UserError(
            f"backend {key!r}: bad options {sorted(options)} ({exc}); valid options: {', '.join(params)}"
        ) from None
    generator: Generator = cls(*args, **options)
    return generator
