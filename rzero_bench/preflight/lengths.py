"""Request lengths: every prompt + ``max_tokens`` against the server's ``max_model_len``.

Rows (:class:`LengthRow`, need = prompt tokens + max_tokens):

- each eval task with local data (or a generated task): its longest prompt. The
  ``TOP_CANDIDATES`` items with the most characters are rendered as the evaluator renders them
  and counted; ``max_tokens`` is the largest of the task's passes;
- ``questions``: the challenger prompt + ``selfplay.question_max_tokens``;
- ``votes / reward``: the solver prompt + a question of up to ``question_max_tokens`` +
  ``selfplay.solver_max_tokens``.

Prompt tokens are exact with the model's ``tokenizer.json`` (a local model directory, or the
Hugging Face cache) plus ``CHAT_TOKENS`` for the chat template around the messages; without one
they are characters / ``CHARS_PER_TOKEN`` (3, conservative for Qwen's and Llama's BPE on English
and LaTeX) plus the same allowance, and printed with a ``~``.

``layout.max_model_len``, when not set, is derived as the longest need rounded up to a multiple of
256 and capped at the model's ``max_position_embeddings`` (:func:`derived_max_model_len`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rzero_bench.config import RunConfig
from rzero_bench.models import Resolution

CHARS_PER_TOKEN = 3.0
CHAT_TOKENS = 32  # chat-template tokens around the messages
TOP_CANDIDATES = 20  # items per task rendered exactly when searching the longest prompt


@dataclass(frozen=True)
class LengthRow:
    what: str  # task name or self-play stage
    item: str  # longest item's id ("" for self-play)
    prompt_tokens: int
    max_tokens: int
    exact: bool
    items: int = 0  # items evaluated (eval tasks)
    samples_per_item: int = 0  # completions per item over all passes

    @property
    def need(self) -> int:
        return self.prompt_tokens + self.max_tokens


class _Counter:
    """Prompt tokens: exact with the model's tokenizer.json, else characters / CHARS_PER_TOKEN."""

    def __init__(self, res: Resolution | None) -> None:
        self.tok: Any = None
        path: Path | None = None
        if res is not None and res.kind == "path":
            cand = Path(res.model) / "tokenizer.json"
            path = cand if cand.is_file() else None
        elif res is not None and res.kind == "hub":
            try:
                from huggingface_hub import try_to_load_from_cache

                found = try_to_load_from_cache(res.model, "tokenizer.json")
                path = Path(found) if isinstance(found, str) else None
            except ImportError:  # pragma: no cover
                path = None
        if path is not None:
            try:
                from tokenizers import Tokenizer

                self.tok = Tokenizer.from_file(str(path))
            except Exception:  # noqa: BLE001 - an unreadable tokenizer falls back to the estimate
                self.tok = None

    @property
    def exact(self) -> bool:
        return self.tok is not None

    def count(self, messages: Sequence[dict[str, str]]) -> int:
        text = "\n".join(m["content"] for m in messages)
        if self.tok is not None:
            return len(self.tok.encode(text).ids) + CHAT_TOKENS
        return math.ceil(len(text) / CHARS_PER_TOKEN) + CHAT_TOKENS


def _eval_tasks(cfg: RunConfig) -> list[Any]:
    """The eval tasks as planned under the run's protocol (plain task specs without protocols)."""
    ev = cfg.eval
    suite = ev.suite if not ev.tasks else None
    try:
        from rzero_bench.protocols import plan_tasks
    except ImportError:
        from rzero_bench.tasks import resolve_tasks

        return list(resolve_tasks(suite=suite, tasks=ev.tasks))
    return [t.spec for t in plan_tasks(suite=suite, tasks=ev.tasks, protocol=getattr(ev, "protocol", None))]


def task_lengths(cfg: RunConfig, data_dir: Path | None, counter: _Counter) -> tuple[list[LengthRow], list[str]]:
    """Longest prompt + max_tokens of every eval task with local data; the tasks without it."""
    from rzero_bench.evaluate import build_messages
    from rzero_bench.tasks import DOC_ID_KEY, has_local_data, load_docs

    rows: list[LengthRow] = []
    missing: list[str] = []
    ev = cfg.eval
    for spec in _eval_tasks(cfg):
        generated = spec.metadata.processor == "generated"
        if not generated and (data_dir is None or not has_local_data(spec, data_dir)):
            missing.append(spec.task)
            continue
        docs = load_docs(spec, data_dir=data_dir, limit=ev.limit, seed=ev.seed)
        if not docs:
            continue
        sizes = sorted(range(len(docs)), key=lambda j: -sum(len(str(v)) for v in docs[j].values()))
        best = (-1, "")
        for j in sizes[:TOP_CANDIDATES]:
            n = counter.count(build_messages(spec, docs[j]))
            if n > best[0]:
                best = (n, str(docs[j].get(DOC_ID_KEY, j)))
        passes = spec.passes(ev.max_tokens, ev.seed, ev.max_samples)
        rows.append(LengthRow(spec.task, best[1], best[0], max(p.max_tokens for p in passes), counter.exact,
                              items=len(docs), samples_per_item=sum(p.n for p in passes)))
    return rows, missing


def selfplay_lengths(cfg: RunConfig, counter: _Counter) -> list[LengthRow]:
    """The self-play requests: questions (challenger prompt) and votes/reward (solver prompt + question)."""
    from rzero_bench.prompts import challenger_messages, load_prompt, solver_messages

    sp = cfg.selfplay
    ch = counter.count(challenger_messages(load_prompt(cfg.prompts["challenger"])))
    so = counter.count(solver_messages(load_prompt(cfg.prompts["solver"]), ""))
    return [LengthRow("questions", "", ch, sp.question_max_tokens, counter.exact),
            LengthRow("votes / reward", "", so + sp.question_max_tokens, sp.solver_max_tokens, counter.exact)]


def derived_max_model_len(rows: Sequence[LengthRow], limit: int | None) -> int | None:
    """The longest need rounded up to 256, capped at the model's limit (None without rows)."""
    if not rows:
        return limit
    need = max(r.need for r in rows)
    value = int(math.ceil(need / 256) * 256)
    return min(value, limit) if limit else value


def _tok(n: int, exact: bool) -> str:
    return f"{n}" if exact else f"~{n}"
