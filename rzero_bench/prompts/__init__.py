"""Prompt files for the two roles. A config may name a replacement file instead of a shipped name.

- ``challenger``: a problem setter that thinks, then writes exactly one ``<question>...</question>``
  block followed by its own answer in ``\\boxed{}``.
- ``solver``: reason step by step, final answer in ``\\boxed{}`` (the paper's evaluation system prompt).
"""

from __future__ import annotations

from pathlib import Path

from rzero_bench.errors import UserError

_HERE = Path(__file__).parent
SOLVER_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


def load_prompt(name_or_path: str) -> dict[str, str]:
    """Load a prompt file: a ``system`` part and a ``user`` part separated by a line ``---``.

    ``name_or_path`` is a shipped name (``challenger``, ``solver``) or a path to a text file.
    The user part may contain ``{question}`` (solver) placeholders.
    """
    p = Path(name_or_path)
    if not p.suffix and (_HERE / f"{name_or_path}.txt").exists():
        p = _HERE / f"{name_or_path}.txt"
    if not p.is_file():
        raise UserError(f"prompt file not found: {name_or_path} (shipped prompts: challenger, solver)")
    text = p.read_text(encoding="utf-8")
    if "\n---\n" not in text:
        raise UserError(f"prompt file {p} must have a system part, a line '---', then a user part")
    system, user = text.split("\n---\n", 1)
    return {"system": system.strip(), "user": user.strip()}


def challenger_messages(prompt: dict[str, str]) -> list[dict[str, str]]:
    return [{"role": "system", "content": prompt["system"]}, {"role": "user", "content": prompt["user"]}]


def solver_messages(prompt: dict[str, str], question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": prompt["system"]},
        {"role": "user", "content": prompt["user"].replace("{question}", question)},
    ]
