"""Optional LLM judge re-check of graded answers, in both directions (``eval --judge``).

The official R-Zero pipeline re-checks with GPT-4o the answers math-verify marked wrong, so its
re-check can only add correct answers (one-sided). Ours asks an OpenAI-compatible model (any
server: ``openai:<model>[@<base_url>]``) about every verdict that could be wrong, both ways:

- an answered sample graded wrong (or that the grader could not decide: timeout, unparseable) may
  be right: the judge can flip it to correct;
- an answered sample graded correct by anything but an exact string match (normalized forms,
  LaTeX fingerprints, math-verify equivalence) may be wrong: the judge can flip it to wrong.

Exact string matches and samples without an answer are not sent. Each distinct (question,
reference, answer) is asked once, greedily; the judge answers YES or NO (the last such word of its
reply counts); a reply with neither keeps the grader's verdict and is counted as ``unparsed``.

Nothing replaces the headline: the judged correctness gives separate metrics named ``<metric>+judge``
(``acc+judge``, ``mean@32+judge``), and the result's ``judge`` records the judge, how many samples
it checked, and how many verdicts it flipped each way. Only math-graded tasks are judged (choice
letters and BBEH's matching rules have nothing for a judge to add).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rzero_bench.errors import UserError
from rzero_bench.records import GenerationRequest, SamplingParams

__all__ = ["JUDGE_PROMPT", "Judge", "JudgeVerdict", "make_judge", "parse_judge_reply", "needs_judge"]

JUDGE_SYSTEM = "You are a careful grader of answers to math problems."
JUDGE_PROMPT = (
    "Problem:\n{question}\n\nReference answer: {reference}\nCandidate answer: {answer}\n\n"
    "Is the candidate answer mathematically equivalent to the reference answer (the same value, "
    "expression or set; formatting, spacing and equivalent forms do not matter)? "
    "Reply with one word: YES or NO."
)
_WORD = re.compile(r"\b(YES|NO)\b", re.IGNORECASE)
EXACT_METHODS = frozenset({"exact"})


def parse_judge_reply(text: str) -> bool | None:
    """The judge's decision: the last standalone YES/NO of its reply (None when there is none).

    >>> parse_judge_reply("The two are equal. YES"), parse_judge_reply("no"), parse_judge_reply("maybe")
    (True, False, None)
    """
    found = _WORD.findall(text or "")
    return found[-1].upper() == "YES" if found else None


def needs_judge(answer: str | None, verdict: dict[str, Any]) -> bool:
    """Is this sample's verdict one the judge re-checks (see the module docstring)?"""
    if answer is None or verdict.get("method") == "no_answer":
        return False
    if verdict.get("correct") is True:
        return verdict.get("method") not in EXACT_METHODS
    return True


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge's decision on one (question, reference, answer) and its raw reply."""

    correct: bool | None
    reply: str


class Judge:
    """An OpenAI-compatible model asked YES/NO about answers (``openai:<model>[@<base_url>]``)."""

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", max_tokens: int = 256,
                 generator: Any = None) -> None:
        self.model, self.base_url, self.api_key_env, self.max_tokens = model, base_url, api_key_env, max_tokens
        self._generator = generator
        self.spec = f"openai:{model}@{base_url}"

    def judge(self, triples: Sequence[tuple[str, str, str]]) -> list[JudgeVerdict]:
        """One verdict per (question, reference, answer); identical triples are asked once."""
        if not triples:
            return []
        unique = list(dict.fromkeys(triples))
        reqs = [
            GenerationRequest(
                messages=({"role": "system", "content": JUDGE_SYSTEM},
                          {"role": "user", "content": JUDGE_PROMPT.format(question=q, reference=r, answer=a)}),
                params=SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens, seed=0),
                id=f"judge/{i}",
            )
            for i, (q, r, a) in enumerate(unique)
        ]
        if self._generator is not None:
            outs = self._generator.generate(reqs)
        else:
            from rzero_bench.backends import make_generator

            with make_generator("openai", self.model, base_url=self.base_url, api_key_env=self.api_key_env) as gen:
                outs = gen.generate(reqs)
        by_triple = {}
        for t, g in zip(unique, outs, strict=True):
            reply = g.texts[0] if g.texts else ""
            by_triple[t] = JudgeVerdict(parse_judge_reply(reply), reply[:300])
        return [by_triple[t] for t in triples]


def make_judge(spec: str, *, api_key_env: str = "OPENAI_API_KEY") -> Judge:
    """A judge from ``openai:<model>@<base_url>`` (the base URL is required: no default endpoint)."""
    s = spec.strip()
    if not s.startswith("openai:"):
        raise UserError(f"--judge {spec!r}: use openai:<model>@<base_url>, e.g. openai:gpt-4o@https://api.openai.com/v1")
    model, _, url = s[len("openai:"):].partition("@")
    if not model or not url:
        raise UserError(f"--judge {spec!r} needs a model and a base URL: openai:<model>@<base_url>")
    return Judge(model, url, api_key_env=api_key_env)
