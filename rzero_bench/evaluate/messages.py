"""What one evaluation item sends: its chat messages and its per-pass request seed.

The system prompt is the task's own (``metadata.system_prompt``) or R-Zero's "Please reason step by
step, and put your final answer within \\boxed{}." (:data:`rzero_bench.prompts.SOLVER_SYSTEM_PROMPT`);
the user turn is the item rendered by the task's ``doc_to_text``. The backend applies the model's
chat template, or, with ``chat=False``, gets one plain prompt. Seeds: :data:`SEED_RULE`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT
from rzero_bench.tasks import TaskSpec

SEED_RULE = "sha256('<seed>:<task>:<doc_id>:<pass>')[:4] (31 bits); sample j draws its own stream from (request seed, j)"


def build_messages(spec: TaskSpec, doc: dict[str, Any], *, chat: bool = True) -> list[dict[str, str]]:
    """System + user chat messages for one item.

    ``chat=False`` (``--no-apply-chat-template``): one finished plain-text prompt instead, the
    system prompt and the question separated by a blank line, which backends send without a chat
    template (role ``prompt``, :data:`rzero_bench.backends.base.RAW_PROMPT_ROLE`).
    """
    system = spec.metadata.system_prompt if spec.metadata.system_prompt is not None else SOLVER_SYSTEM_PROMPT
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": spec.render_text(doc)})
    if not chat:
        return [{"role": "prompt", "content": "\n\n".join(m["content"] for m in messages)}]
    return messages


def request_seed(seed: int, task: str, doc_id: str, pass_name: str) -> int:
    """The seed of one item's request in one pass: distinct per (task, item, pass), fixed by ``seed``.

    Backends draw sample ``j`` of a request from a stream keyed by (request seed, j), so every
    sample of every item has its own stream (with one seed for all items, sample j of every item
    would share one stream). 31 bits, accepted by every backend and server.
    """
    digest = hashlib.sha256(f"{seed}:{task}:{doc_id}:{pass_name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
