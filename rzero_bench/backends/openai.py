"""OpenAI-compatible HTTP backend: ``vllm serve``, llama.cpp's server, or a hosted API.

Each request becomes ``POST {base_url}/chat/completions`` (``/completions`` with
``use_chat=False``, the prompt rendered with the declared plain fallback format) carrying
``model, messages, n, temperature, top_p, max_tokens, stop, seed``; ``top_k`` is sent as an extra
body field only when > 0 (vLLM accepts it, hosted APIs may not).

Behaviour:

- a prompt + ``max_tokens`` over the server's context length (HTTP 400 "maximum context length is
  L ... P input tokens", vLLM's wording) is sent again once with ``max_tokens`` clamped to L - P;
  when the prompt alone fills the context a one-line :class:`BackendError` names the request id
  (``<task>/<item>/<pass>`` in evaluation) and both numbers;
- at most ``concurrency`` HTTP calls in flight (a thread pool sharing one ``httpx.Client``);
- 429, 5xx, connection errors, timeouts and unreadable bodies are retried up to ``max_retries``
  times with exponential backoff ``backoff * 2**attempt`` plus up to 50 % jitter, capped at
  ``max_backoff``, and never shorter than the server's ``Retry-After`` (itself honoured up to
  ``max_retry_after`` seconds); other 4xx fail at once;
  when the retries are spent a one-line :class:`BackendError` names the URL and the last status;
- servers that return fewer than ``n`` choices (some ignore ``n``) get follow-up calls for the
  rest; follow-up calls are seeded :func:`sample_seed` ``(seed, choices_so_far)`` so seeded samples
  do not repeat;
- engines that refuse ``n`` (``supports_n=False``, e.g. ``transformers serve``) get one call per
  sample instead, all in flight together: sample j of a request is seeded ``sample_seed(seed, j)``
  (the same seeds the follow-up calls use), so the samples differ and a rerun repeats them;
- ``top_k_mode="generation_config"`` (``transformers serve``) sends a ``generation_config`` JSON
  string with ``do_sample`` (true when temperature > 0) and ``top_k``: that server samples only
  when the generation config says ``do_sample``, whatever the temperature, and refuses ``top_k``
  as a field;
- finish reasons map to ``"stop"``/``"length"``; completion tokens come from ``usage`` (per
  choice when the server gives it, else the total split in proportion to text length, else a
  rough ``len(text) / 4``);
- response bodies are capped at ``max_response_bytes`` and decoded as UTF-8 with replacement;
  ``content: null`` becomes ``""``; stop strings are also applied client-side;
- results come back in request order; ``progress(1)`` is called per finished request.

API key: read once at construction from the environment variable named by ``api_key_env``
(default ``OPENAI_API_KEY``) and sent as ``Authorization: Bearer ...``. If the variable is unset
or empty no Authorization header is sent, which suits local servers without a key. The key is
never logged, never part of an exception message or ``repr``, and never written anywhere; any
server text quoted in an error has it masked.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from rzero_bench.backends.base import BaseGenerator, ProgressFn, apply_stop, render_fallback
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import Generation, GenerationRequest

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# vLLM's refusals of an overlong request: "This model's maximum context length is 8192 tokens.
# However, you requested 10000 tokens (5904 in the messages, 4096 in the completion)" and
# "... and your request has 5904 input tokens (4096 > 8192 - 5904)"
_CONTEXT = re.compile(r"maximum context length is (\d+)", re.IGNORECASE)
_PROMPT_TOKENS = re.compile(r"(\d+) (?:tokens )?in the messages|(\d+) input tokens|prompt (?:has|contains) (\d+) tokens",
                            re.IGNORECASE)


class _TooLong(BackendError):
    """HTTP 400: prompt + max_tokens exceed the server's context (``limit``; ``prompt`` tokens if said)."""

    def __init__(self, message: str, limit: int, prompt: int | None) -> None:
        super().__init__(message)
        self.limit, self.prompt = limit, prompt


def _too_long(detail: str) -> tuple[int, int | None] | None:
    m = _CONTEXT.search(detail)
    if m is None:
        return None
    p = _PROMPT_TOKENS.search(detail)
    prompt = next((int(g) for g in p.groups() if g), None) if p else None
    return int(m.group(1)), prompt


_LENGTH_REASONS = frozenset({"length", "max_tokens", "model_length", "max_output_tokens"})


class _Secret:
    """Holds the API key; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "<secret>" if self._value else "<no key>"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle the key
        raise TypeError("the API key is not picklable")


class _Retryable(Exception):
    """One failed attempt that may be retried; ``status`` is a short description."""

    def __init__(self, status: str, retry_after: float | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


class _Aborted(Exception):
    """Another request failed; this one stops early."""


def _redact_url(url: str) -> str:
    """Drop user:password@ and the query string from a URL for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return max(0.0, (when - current).total_seconds())


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a request seeded ``seed``: ``seed`` itself for sample 0, else
    the first 31 bits of ``sha256("<seed>/<index>")``. With ``seed + index`` two requests seeded s and
    s + 1 with the same prompt (the questions stage seeds its requests that way) would share samples."""
    if index == 0:
        return seed
    return int(hashlib.sha256(f"{seed}/{index}".encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _rough_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _distribute(total: int, texts: Sequence[str]) -> list[int]:
    """Split ``total`` tokens over texts in proportion to their length (sums to ``total``)."""
    if not texts:
        return []
    weights = [max(len(t), 1) for t in texts]
    wsum = sum(weights)
    shares = [total * w // wsum for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(texts)), key=lambda i: -(total * weights[i] % wsum))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def _content_text(value: Any) -> str:
    """Text of a message ``content`` / completion ``text``: None -> "", list of parts joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        out = []
        for part in value:
            if isinstance(part, dict):
                out.append(_content_text(part.get("text")))
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return str(value)


class OpenAIGenerator(BaseGenerator):
    """Generator talking to an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_retry_after: float = 120.0,
        use_chat: bool = True,
        max_response_bytes: int = 32 * 1024 * 1024,
        extra_body: dict[str, Any] | None = None,
        supports_n: bool = True,
        top_k_mode: str = "field",
    ) -> None:
        if not base_url or urlsplit(str(base_url)).scheme not in ("http", "https"):
            raise UserError(
                f"openai backend: base_url must start with http:// or https:// (got {_redact_url(str(base_url))!r}),"
                " e.g. http://127.0.0.1:8000/v1"
            )
        if concurrency < 1:
            raise UserError("openai backend: concurrency must be >= 1")
        if max_retries < 0:
            raise UserError("openai backend: max_retries must be >= 0")
        if timeout <= 0:
            raise UserError("openai backend: timeout must be > 0 seconds")
        if top_k_mode not in ("field", "generation_config"):
            raise UserError(f"openai backend: top_k_mode must be field or generation_config (got {top_k_mode!r})")
        self.model_id = model
        self.base_url = str(base_url).rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self.use_chat = bool(use_chat)
        self.max_response_bytes = int(max_response_bytes)
        self.extra_body = dict(extra_body or {})
        self.supports_n = bool(supports_n)
        self.top_k_mode = top_k_mode
        self.endpoint = f"{self.base_url}/{'chat/completions' if self.use_chat else 'completions'}"
        self._key = _Secret(os.environ.get(api_key_env, "").strip()) if api_key_env else _Secret("")
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._rng = random.Random()

    def __repr__(self) -> str:
        return (
            f"OpenAIGenerator(model={self.model_id!r}, base_url={_redact_url(self.base_url)!r}, "
            f"api_key_env={self.api_key_env!r}, key={'set' if self._key else 'unset'}, "
            f"concurrency={self.concurrency})"
        )

    # -- plumbing -------------------------------------------------------------------------
    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(
                        max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                    ),
                    follow_redirects=False,
                    # proxies from the environment apply to remote servers, never to loopback
                    trust_env=urlsplit(self.base_url).hostname not in _LOOPBACK,
                )
            return self._client

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return headers

    def _mask(self, text: str) -> str:
        key = self._key.reveal()
        if key:
            text = text.replace(key, "***")
        return " ".join(text.split())

    def _where(self) -> str:
        return f"POST {_redact_url(self.endpoint)}"

    def _body(self, request: GenerationRequest, n: int, seed_offset: int) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {"model": self.model_id}
        if self.use_chat:
            body["messages"] = [dict(m) for m in request.messages]
        else:
            body["prompt"] = render_fallback(request.messages)
        if self.supports_n:
            body["n"] = n
        body.update(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens)
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = sample_seed(int(p.seed), seed_offset)
        if self.top_k_mode == "generation_config":
            # transformers serve: sampling is on only when the config says so (temperature alone
            # leaves a model without do_sample in its generation_config.json on greedy decoding)
            gen_config: dict[str, Any] = {"do_sample": p.temperature > 0}
            if p.top_k > 0:
                gen_config["top_k"] = p.top_k
            body["generation_config"] = json.dumps(gen_config)
        elif p.top_k > 0:
            body["top_k"] = p.top_k
        body.update(self.extra_body)
        return body

    def _post_once(self, body: dict[str, Any]) -> dict[str, Any]:
        """One HTTP call. Returns the parsed JSON; raises _Retryable or BackendError."""
        client = self._get_client()
        try:
            with client.stream("POST", self.endpoint, json=body, headers=self._headers()) as resp:
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise BackendError(
                            f"openai backend: {self._where()} sent more than {self.max_response_bytes} bytes;"
                            " lower max_tokens or raise max_response_bytes"
                        )
                    chunks.append(chunk)
                status = resp.status_code
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timeout after {self.timeout:g}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection error ({type(exc).__name__})") from None
        raw = b"".join(chunks).decode("utf-8", errors="replace")
        if status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status}", retry_after)
        if status >= 400 or status < 200:
            detail = raw
            try:
                data = json.loads(raw)
                err = data.get("error") if isinstance(data, dict) else None
                if isinstance(err, dict):
                    detail = str(err.get("message") or err)
                elif err:
                    detail = str(err)
            except ValueError:
                pass
            detail = self._mask(detail)[:300]
            hint = ""
            if status in (401, 403):
                hint = f"; check the API key in ${self.api_key_env}"
            elif status == 404:
                hint = "; check base_url (usually ends in /v1) and the model name"
            message = f"openai backend: {self._where()} returned HTTP {status}: {detail}{hint}"
            overflow = _too_long(detail) if status == 400 else None
            if overflow is not None:
                raise _TooLong(message, *overflow)
            raise BackendError(message)
        try:
            data = json.loads(raw)
        except ValueError:
            raise _Retryable(f"HTTP {status} with a body that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise _Retryable(f"HTTP {status} without a 'choices' list")
        return data

    def _post(self, body: dict[str, Any], abort: threading.Event) -> dict[str, Any]:
        """POST with retries and backoff."""
        attempts = self.max_retries + 1
        last = "no attempt"
        for attempt in range(attempts):
            if abort.is_set():
                raise _Aborted()
            try:
                return self._post_once(body)
            except _Retryable as exc:
                last = exc.status
                if attempt + 1 >= attempts:
                    break
                delay = min(self.backoff * (2**attempt), self.max_backoff)
                delay *= 1.0 + 0.5 * self._rng.random()
                delay = min(delay, self.max_backoff)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.max_retry_after))
                log.warning(
                    "openai backend: %s: %s; retry %d/%d in %.2fs",
                    self._where(),
                    last,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                if abort.wait(delay):
                    raise _Aborted() from None
        raise BackendError(
            f"openai backend: {self._where()} failed after {attempts} attempt(s), last: {last};"
            " check that the server is up and reachable, or raise max_retries/timeout"
        )

    def _parse(
        self, data: dict[str, Any], request: GenerationRequest, want: int
    ) -> tuple[list[str], list[str], list[int], int]:
        choices = sorted(
            (c for c in data["choices"] if isinstance(c, dict)),
            key=lambda c: c.get("index", 0) if isinstance(c.get("index", 0), int) else 0,
        )[:want]
        texts: list[str] = []
        finishes: list[str] = []
        per_choice: list[int | None] = []
        for c in choices:
            if self.use_chat:
                msg = c.get("message") or {}
                text = _content_text(msg.get("content") if isinstance(msg, dict) else None)
            else:
                text = _content_text(c.get("text"))
            text, _ = apply_stop(text, request.params.stop)
            texts.append(text)
            reason = str(c.get("finish_reason") or "stop").lower()
            finishes.append("length" if reason in _LENGTH_REASONS else "stop")
            usage_c = c.get("usage")
            tok = usage_c.get("completion_tokens") if isinstance(usage_c, dict) else None
            per_choice.append(tok if isinstance(tok, int) and tok >= 0 else None)
        usage_any = data.get("usage")
        usage: dict[str, Any] = usage_any if isinstance(usage_any, dict) else {}
        total = usage.get("completion_tokens")
        prompt_tokens = usage.get("prompt_tokens")
        prompt_tokens = prompt_tokens if isinstance(prompt_tokens, int) and prompt_tokens >= 0 else 0
        if per_choice and all(t is not None for t in per_choice):
            tokens = [int(t or 0) for t in per_choice]
        elif isinstance(total, int) and total >= 0 and len(data["choices"]) == len(texts):
            tokens = _distribute(total, texts)
        else:
            tokens = [_rough_tokens(t) for t in texts]
        return texts, finishes, tokens, prompt_tokens

    def _one(self, request: GenerationRequest, abort: threading.Event, n: int | None = None,
             seed_offset: int = 0) -> Generation:
        """``n`` samples (default: the request's) of ``request``, sample i seeded
        ``sample_seed(seed, seed_offset + i)``."""
        n = request.params.n if n is None else n
        texts: list[str] = []
        finishes: list[str] = []
        tokens: list[int] = []
        prompt_tokens = 0
        calls = 0
        while len(texts) < n:
            if calls >= n:
                raise BackendError(
                    f"openai backend: {self._where()} returned only {len(texts)} of {n} choices after {calls} calls"
                )
            calls += 1
            body = self._body(request, n - len(texts), seed_offset + len(texts))
            try:
                data = self._post(body, abort)
            except _TooLong as e:
                data = self._post(self._clamped(body, request, e), abort)
            t, f, k, pt = self._parse(data, request, n - len(texts))
            if not t:
                raise BackendError(
                    f"openai backend: {self._where()} returned no choices; check the model name"
                )
            texts += t
            finishes += f
            tokens += k
            prompt_tokens = prompt_tokens or pt
        return Generation(
            texts=tuple(texts),
            finish_reasons=tuple(finishes),
            completion_tokens=tuple(tokens),
            prompt_tokens=prompt_tokens,
            id=request.id,
        )

    def _clamped(self, body: dict[str, Any], request: GenerationRequest, e: _TooLong) -> dict[str, Any]:
        """``body`` with ``max_tokens`` cut to what the server's context leaves after the prompt."""
        room = e.limit - e.prompt if e.prompt is not None else None
        asked = int(body.get("max_tokens") or 0)
        if room is None or room >= asked:
            raise BackendError(f"openai backend: request {request.id}: {e}") from None
        if room < 1:
            raise BackendError(
                f"openai backend: request {request.id}: its prompt has {e.prompt} tokens, the server's context "
                f"is {e.limit} (max_model_len); raise layout.max_model_len or shorten the prompt"
            ) from None
        log.warning("openai backend: request %s: max_tokens %d clamped to %d (prompt %d tokens, context %d)",
                    request.id, asked, room, e.prompt, e.limit)
        return {**body, "max_tokens": room}

    # -- public ---------------------------------------------------------------------------
    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressFn | None = None
    ) -> list[Generation]:
        """Return one Generation per request, in request order (see the module docstring)."""
        requests = list(requests)
        if not requests:
            return []
        # one unit per request, or (engine without ``n``) one unit per sample: (request, n, seed offset)
        units: list[tuple[int, int, int]] = []
        for i, req in enumerate(requests):
            if self.supports_n or req.params.n <= 1:
                units.append((i, req.params.n, 0))
            else:
                units.extend((i, 1, j) for j in range(req.params.n))
        parts: list[Generation | None] = [None] * len(units)
        left = [0] * len(requests)
        for i, _, _ in units:
            left[i] += 1
        abort = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(units)), thread_name_prefix="openai")
        try:
            futures: dict[Future[Generation], int] = {
                pool.submit(self._one, requests[i], abort, n, off): u for u, (i, n, off) in enumerate(units)
            }
            pending: set[Future[Generation]] = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in sorted(done, key=futures.__getitem__):
                    u = futures[fut]
                    parts[u] = fut.result()  # re-raises the first failure
                    left[units[u][0]] -= 1
                    if progress is not None and left[units[u][0]] == 0:
                        progress(1)
        finally:
            # On failure or Ctrl-C: stop retries in other workers, drop queued requests and return
            # at once; calls already on the wire finish (or time out) in the background.
            abort.set()
            pool.shutdown(wait=False, cancel_futures=True)
        results: list[Generation | None] = [None] * len(requests)
        for (i, _, _), g in zip(units, parts, strict=True):
            if g is None:
                continue
            prev = results[i]
            results[i] = g if prev is None else Generation(
                texts=prev.texts + g.texts, finish_reasons=prev.finish_reasons + g.finish_reasons,
                completion_tokens=prev.completion_tokens + g.completion_tokens,
                prompt_tokens=prev.prompt_tokens or g.prompt_tokens, id=prev.id)
        return [g for g in results if g is not None]

    def close(self) -> None:
        """Close the HTTP connection pool (idempotent)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
