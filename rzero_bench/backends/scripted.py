"""Scripted backend: canned outputs for tests, no model.

The responder decides each sample's text and may be

- a callable ``(request, sample_index) -> str``;
- a dict ``request id -> list of texts``: each id keeps a cursor that cycles through its list, so
  one request with ``n`` samples gets texts 0..n-1 (wrapping) and a later request with the same
  id continues where the last one stopped; the key ``"*"`` is the fallback for unknown ids;
- a list of texts consumed in order across all samples of all requests (running out is an
  error);
- a single string returned for every sample.

Like a real backend it honours stop strings (the text is cut before the first stop string, which
is not included) and ``max_tokens`` (whitespace-split words; cut text has finish reason
``"length"``). Token counts are whitespace-split lengths. Every request received is recorded in
``.requests`` for assertions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from rzero_bench.backends.base import BaseGenerator, ProgressFn, apply_stop
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import Generation, GenerationRequest

Responder = Callable[[GenerationRequest, int], str] | Mapping[str, Sequence[str]] | Sequence[str] | str

_WORD = re.compile(r"\S+")


class ScriptedGenerator(BaseGenerator):
    """A Generator that returns canned texts chosen by ``responder`` (see module docstring)."""

    name = "scripted"

    def __init__(
        self, responder: Responder, *, model_id: str = "scripted", honour_max_tokens: bool = True
    ) -> None:
        if not (callable(responder) or isinstance(responder, (Mapping, Sequence))):
            raise UserError(
                "scripted backend: responder must be a callable, a dict id -> texts, a list or a str"
            )
        self.model_id = model_id
        self.honour_max_tokens = honour_max_tokens
        self.requests: list[GenerationRequest] = []
        self.closed = False
        self.close_count = 0
        self._responder = responder
        self._cursor: dict[str, int] = {}
        self._consumed = 0

    def __repr__(self) -> str:
        return f"ScriptedGenerator(model_id={self.model_id!r}, requests={len(self.requests)})"

    def _text(self, request: GenerationRequest, index: int) -> str:
        r = self._responder
        if isinstance(r, str):
            return r
        if callable(r):
            return str(r(request, index))
        if isinstance(r, Mapping):
            key = request.id if request.id in r else "*"
            if key not in r:
                raise BackendError(f"scripted backend: no canned texts for request id {request.id!r}")
            texts = r[key]
            if isinstance(texts, str):
                return texts
            if not texts:
                raise BackendError(f"scripted backend: empty canned text list for request id {key!r}")
            pos = self._cursor.get(key, 0)
            self._cursor[key] = pos + 1
            return str(texts[pos % len(texts)])
        if self._consumed >= len(r):
            raise BackendError(f"scripted backend: ran out of canned texts after {len(r)}; add more texts")
        text = r[self._consumed]
        self._consumed += 1
        return str(text)

    def _one(self, request: GenerationRequest) -> Generation:
        p = request.params
        texts: list[str] = []
        finishes: list[str] = []
        tokens: list[int] = []
        for i in range(p.n):
            text, _ = apply_stop(self._text(request, i), p.stop)
            finish = "stop"
            if self.honour_max_tokens:
                words = list(_WORD.finditer(text))
                if len(words) > p.max_tokens:
                    text = text[: words[p.max_tokens - 1].end()]
                    finish = "length"
            texts.append(text)
            finishes.append(finish)
            tokens.append(len(text.split()))
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.messages)
        return Generation(
            texts=tuple(texts),
            finish_reasons=tuple(finishes),
            completion_tokens=tuple(tokens),
            prompt_tokens=prompt_tokens,
            id=request.id,
        )

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[Generation]:
        """Return one Generation per request, in order, and record the requests."""
        out: list[Generation] = []
        for request in requests:
            self.requests.append(request)
            out.append(self._one(request))
            if progress is not None:
                progress(1)
        return out

    def close(self) -> None:
        """Mark the generator closed (idempotent). It keeps working, so tests can reuse it."""
        self.closed = True
        self.close_count += 1

    def reset(self) -> None:
        """Forget recorded requests and rewind cursors (for reuse across test cases)."""
        self.requests.clear()
        self._cursor.clear()
        self._consumed = 0
        self.closed = False
