"""What one completion answers: the last ``\\boxed{}`` (a letter for multiple choice), BBEH's own
"The answer is: X" form when there is no box, and the official random-letter fallback.

The fallback (``unanswered: random_letter`` under the ``official`` protocol) replaces an unparsed
multiple-choice answer with a letter from A-J drawn from a stream seeded per (seed, task, item,
sample), so a rerun draws the same letters.
"""

from __future__ import annotations

import random
import re

from rzero_bench.tasks import CHOICE_LETTERS

RANDOM_LETTERS = CHOICE_LETTERS[:10]  # the official scripts draw the fallback letter from A-J

# BBEH's own answer forms, used when there is no \boxed{} (its prompt asks for "The answer is: X").
_BBEH_PREFIXES = re.compile(
    r"(?:the\s+final\s+answer\s+is|the\s+answer\s+is|final\s+answer)\s*[:：]?\s*", re.IGNORECASE
)


def extract_answer(text: str, kind: str, letters: str | None = None) -> str | None:
    """The answer a completion gives: a letter for ``choice``, else the last ``\\boxed{}`` content."""
    from rzero_bench.parsing import extract_choice, last_boxed

    if kind == "choice":
        return extract_choice(text, letters or CHOICE_LETTERS[:10])
    boxed = last_boxed(text)
    if boxed is not None or kind != "bbeh":
        return boxed.strip() if boxed is not None else None
    matches = list(_BBEH_PREFIXES.finditer(text))
    if not matches:
        return None
    tail = text[matches[-1].end() :].strip()
    tail = tail.splitlines()[0].strip() if tail else ""
    return tail.rstrip(".").strip() or None


def random_letter(seed: int, task: str, doc_id: str, index: int) -> str:
    """The official fallback for an unparsed multiple-choice answer: a letter from A-J, seeded per sample."""
    return random.Random(f"rzero-fallback:{seed}:{task}:{doc_id}:{index}").choice(RANDOM_LETTERS)
