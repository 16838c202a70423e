"""Extraction of answers and questions from untrusted model output.

Implements the answer conventions of R-Zero (arXiv 2508.05004, §3): the challenger writes its
question between ``<question>`` tags, the solver puts its final answer in ``\\boxed{}``;
multiple-choice answers are letters A-J (MMLU-Pro, SuperGPQA, BBEH).

Everything here is pure string processing: no ``eval``, no ``sympify``, and every function runs in
(near) linear time on megabytes of text (braces are matched with one stack pass, regexes have no
nested quantifiers).

Decisions:
- ``last_boxed`` returns the content of the last *balanced* box; an unclosed box (for example a
  truncated completion) is ignored. ``\\boxed{}`` gives ``""`` (a box with nothing in it, which
  the grader treats as no answer). A box that wraps only another box is unwrapped.
- ``\\boxed 5`` (no braces) takes the run of characters up to the next whitespace or ``$``.
- Escaped braces ``\\{`` and ``\\}`` do not count for balancing.
"""

from __future__ import annotations

import re

__all__ = ["last_boxed", "all_boxed", "extract_question", "extract_choice", "decode_untrusted"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
# "\\\\" (a LaTeX line break) is consumed as one token so that "\\\\{" counts as a real brace.
_BRACE_RE = re.compile(r"\\\\|\\[{}]|[{}]")
_UNBRACED_RE = re.compile(r"[ \t]*([^\s$]+)")


def _match_braces(text: str, start: int) -> dict[int, int]:
    """Map the position of every ``{`` at or after ``start`` to its matching ``}`` (one pass)."""
    stack: list[int] = []
    match: dict[int, int] = {}
    for m in _BRACE_RE.finditer(text, start):
        tok = m.group()
        if tok == "{":
            stack.append(m.start())
        elif tok == "}":
            if stack:
                match[stack.pop()] = m.start()
    return match


def _boxes(text: str) -> list[str]:
    """Contents of the outermost balanced boxes, in order of appearance."""
    first = _BOX_RE.search(text)
    if first is None:
        return []
    match: dict[int, int] | None = None
    out: list[str] = []
    pos = first.start()
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            break
        j = m.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            if match is None:
                match = _match_braces(text, first.start())
            close = match.get(j)
            if close is None:  # unbalanced: ignore this box, keep scanning inside it
                pos = j + 1
                continue
            out.append(text[j + 1 : close])
            pos = close + 1
        else:
            um = _UNBRACED_RE.match(text, m.end())
            if um is not None and (um.start(1) > m.end() or text[m.end()].isdigit()):
                out.append(um.group(1))
                pos = um.end()
            else:
                pos = m.end()
    return out


_BOX_OPEN_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _unwrap_box(content: str) -> str:
    """``\\boxed{X}`` spanning the whole string becomes ``X`` (repeatedly)."""
    for _ in range(8):
        s = content.strip()
        m = _BOX_OPEN_RE.match(s)
        if m is None or _match_braces(s, m.end() - 1).get(m.end() - 1) != len(s) - 1:
            break
        content = s[m.end() : -1]
    return content


def all_boxed(text: str) -> list[str]:
    """Contents of every balanced top-level ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed x``, in order."""
    return _boxes(text)


def last_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\boxed 5``; None if none."""
    boxes = _boxes(text)
    if not boxes:
        return None
    return _unwrap_box(boxes[-1])


def extract_question(text: str) -> str | None:
    """Stripped content of the last complete ``<question>...</question>``; None if none."""
    end = text.rfind("</question>")
    if end < 0:
        return None
    start = text.rfind("<question>", 0, end)
    if start < 0:
        return None
    return text[start + len("<question>") : end].strip()


_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")


def _letter_re(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    cls = "[" + "".join(re.escape(c) for c in letters) + "]"
    whole = re.compile(rf"\(?\s*({cls})\s*\)?\s*[.:]?")
    lead = re.compile(rf"(?:\(({cls})\)|({cls})[.):])(?:\s|$)")
    answer = re.compile(
        rf"(?i:answer)(?:\s+(?i:is))?\s*[:：]?\s*(?:\*\*)?\s*(?:\$)?\s*\(?({cls})\)?(?![A-Za-z0-9])"
    )
    paren = re.compile(rf"\(({cls})\)")
    return whole, lead, answer, paren


_LETTER_CACHE: dict[str, tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]] = {}


def _clean_choice(s: str) -> str:
    s = s.strip()
    for _ in range(3):
        s = _WRAP_RE.sub(r"\1", s)
    return s.replace("**", "").replace("$", "").strip()


def _letter_of(s: str, letters: str) -> str | None:
    whole, lead, _, _ = _patterns(letters)
    s = _clean_choice(s)
    m = whole.fullmatch(s)
    if m:
        return m.group(1)
    m = lead.match(s)
    if m:
        return m.group(1) or m.group(2)
    return None


def _patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    pats = _LETTER_CACHE.get(letters)
    if pats is None:
        if not letters:
            raise ValueError("extract_choice: letters must not be empty")
        pats = _letter_re(letters)
        _LETTER_CACHE[letters] = pats
    return pats


def extract_choice(text: str, letters: str = "ABCDEFGHIJ") -> str | None:
    """The chosen option letter: from the last ``\\boxed{}``, a bare "C"/"(C)"/"C.", "Answer: C" /
    "the answer is (C)", or else the last "(C)" in the text; None if none is found."""
    _, _, answer, paren = _patterns(letters)
    box = last_boxed(text)
    if box is not None:
        letter = _letter_of(box, letters)
        if letter is not None:
            return letter
    letter = _letter_of(text, letters)
    if letter is not None:
        return letter
    last = None
    for m in answer.finditer(text):
        last = m.group(1)
    if last is not None:
        return last
    for m in paren.finditer(text):
        last = m.group(1)
    return last


def decode_untrusted(data: bytes) -> str:
    """Decode bytes as UTF-8, replacing invalid sequences with U+FFFD (never raises)."""
    if isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", errors="replace")
