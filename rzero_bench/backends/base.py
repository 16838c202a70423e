"""The Generator protocol every backend implements, and the single place chat prompts are rendered.

A backend turns a batch of :class:`GenerationRequest` (chat messages + sampling params) into one
:class:`Generation` per request (``n`` texts, finish reasons, token counts). Backends are context
managers; leaving the ``with`` block frees model memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from rzero_bench.records import Generation, GenerationRequest

ProgressFn = Callable[[int], None]  # called with the number of requests just finished


@runtime_checkable
class Generator(Protocol):
    """Batched text generation."""

    name: str  # backend name: "hf" | "vllm" | "openai" | "scripted"
    model_id: str  # model path or hub id or served model name

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[Generation]:
        """Return one Generation per request, in order."""
        ...

    def close(self) -> None:
        """Free memory / connections. Idempotent."""
        ...

    def __enter__(self) -> Generator: ...

    def __exit__(self, *exc: Any) -> None: ...


class BaseGenerator:
    """Context-manager plumbing shared by the concrete backends."""

    name = "base"
    model_id = ""

    def __enter__(self) -> BaseGenerator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        return None

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[Generation]:  # pragma: no cover - overridden
        raise NotImplementedError


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest occurrence of any stop string; returns (text, was_cut)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut], cut < len(text)


# Fallback chat format for models without a chat template (declared, recorded in results).
FALLBACK_CHAT_TEMPLATE_NAME = "rzero-plain-v1"


def render_fallback(messages: Sequence[dict[str, str]]) -> str:
    """Plain-text rendering used when a tokenizer has no chat template."""
    parts = []
    for m in messages:
        role = m["role"]
        label = {"system": "System", "user": "User", "assistant": "Assistant"}.get(role, role.title())
        parts.append(f"{label}: {m['content']}\n")
    parts.append("Assistant:")
    return "".join(parts)


# A request whose only message has this role is a finished prompt: sent as is, no chat template
# (``eval --no-apply-chat-template``; local backends only, an OpenAI-compatible server applies its own).
RAW_PROMPT_ROLE = "prompt"
NO_TEMPLATE_NAME = "none"


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, str]:
    """Render chat messages to a prompt string. Returns (prompt, template_name).

    Uses the tokenizer's chat template when it has one (add_generation_prompt=True), else the
    declared fallback; a single message of role ``prompt`` is returned unchanged (template name
    ``none``). This is the only place prompts are rendered for local models.
    """
    if len(messages) == 1 and messages[0].get("role") == RAW_PROMPT_ROLE:
        return str(messages[0]["content"]), NO_TEMPLATE_NAME
    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    if template:
        text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return str(text), "model"
    return render_fallback(messages), FALLBACK_CHAT_TEMPLATE_NAME
