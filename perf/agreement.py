"""Agreement of the grader's fast path with math-verify, measured on the local benchmark data.

The fast path (``rzero_bench.grading.cheap.decide_pair``: normalised numbers/text, then pure-Python
fingerprints) claims to return math-verify's verdict, in both directions, whenever it returns one.
This script checks that claim on answer pairs built from the benchmark files in
``$RZERO_DATA_DIR`` (default ``../shared/benchmarks``): every gold answer of math500, minerva_math,
olympiadbench, gsm8k, amc23, aime24 and aime25 (rendered as the task files render them), paired with

- **solution math**: the last inline formulas and boxed answers of the item's own worked solution
  (gsm8k: its calculator results) -- what a model that stopped one step early writes;
- **spellings**: the gold rewritten without spaces, with ``\\dfrac``/``\\left``/``$``/``\\boxed``,
  as a decimal, with thousands separators, reordered list items;
- **perturbations**: one number changed by one, the sign flipped, ``+1`` appended, a ``2`` in front;
- **neighbours**: the gold of another, random item of the same benchmark (seeded).

For each distinct pair where the fast path decides, math-verify is run in both directions in
``rzero_bench.grading``'s killable worker processes (``verify(parse(gold), parse(pred))``, both
strings prepared exactly as ``grade`` prepares them). A disagreement is a pair where math-verify
parsed both strings and its verdict, in either direction, differs from the fast path's. Pairs where
math-verify timed out or parsed nothing are counted apart (the fast path is not wrong there:
``grade`` reports no verdict, clustering counts them as different).

Usage: ``.venv/bin/python perf/agreement.py [--per-source 3] [--seed 0] [--limit N] [--out FILE]
[--reuse FILE]``. Exit status 1 when any disagreement is found (each is printed; each became a row
of ``tests/unit/grading_cases.py`` and a fix).

Measured (seed 0, 3 per source, math-verify 0.9.0, 2 shared cores, ~620 s from scratch): 23,569
distinct pairs, 19,164 decided by the fast path (81.3%), 0 order-dependent, all 19,164 agree with
math-verify in both directions: 0 disagreements, 0 timeouts (seed 1: 19,147 decided, 0
disagreements). The first run of this script, on the fast path as it was before this check
existed, found 73 disagreements among 17,506 decided pairs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RZERO_DATA_DIR", ROOT.parent / "shared" / "benchmarks"))
TASKS = ("math500", "minerva_math", "olympiadbench", "gsm8k", "amc23", "aime24", "aime25")
SOLUTION_FIELD = {
    "math500": "solution",
    "minerva_math": "solution",
    "olympiadbench": "solution",
    "aime24": "solution",
    "gsm8k": "answer",
}
MAX_LEN = 120  # longer strings are not plausible final answers

_INLINE_RE = re.compile(r"(?<!\\)\$\$?([^$]{1," + str(MAX_LEN) + r"})\$\$?")
_CALC_RE = re.compile(r"<<[^<>=]*=([^<>]+)>>")
_INT_RE = re.compile(r"\d+")


def golds(task: str) -> list[tuple[str, str]]:
    """(gold answer, worked solution text) for every item of ``task``, rendered by the task file."""
    from rzero_bench.tasks import load_docs, load_task

    spec = load_task(task)
    out = []
    for doc in load_docs(spec, data_dir=DATA):
        sol = doc.get(SOLUTION_FIELD.get(task, ""), "")
        if isinstance(sol, list):
            sol = "\n".join(str(s) for s in sol)
        out.append((spec.render_target(doc), str(sol or "")))
    return out


def solution_math(task: str, solution: str, k: int) -> list[str]:
    """The last ``k`` distinct formulas of a worked solution (gsm8k: calculator results)."""
    from rzero_bench.parsing import last_boxed

    if task == "gsm8k":
        found = _CALC_RE.findall(solution)
    else:
        found = [m.strip().rstrip(".,;") for m in _INLINE_RE.findall(solution)]
        boxed = last_boxed(solution)
        if boxed:
            found.append(boxed)
    seen: list[str] = []
    for s in reversed(found):
        s = s.strip()
        if s and s not in seen and len(s) <= MAX_LEN:
            seen.append(s)
        if len(seen) == k:
            break
    return seen


def spellings(gold: str) -> list[str]:
    """Rewritings of ``gold`` a model might produce (equal or not: math-verify decides)."""
    out = [
        gold.replace(" ", ""),
        re.sub(r"([+\-=,])", r" \1 ", gold),
        gold.replace("\\frac", "\\dfrac"),
        gold.replace("\\left", "").replace("\\right", ""),
        f"${gold}$",
        f"\\boxed{{{gold}}}",
        f"x = {gold}",
    ]
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", gold)
    if m and int(m.group(3)):
        v = Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
        out += [f"{float(v):.6f}", f"{float(v):.3f}", f"{m.group(1)}{m.group(2)}/{m.group(3)}"]
    if re.fullmatch(r"-?\d{4,}", gold):
        out.append(f"{int(gold):,}")
    if re.fullmatch(r"-?\d+", gold):
        out += [f"{gold}.0", f"{gold}.00", f"\\${gold}", f"{gold}\\%", f"{gold}^\\circ"]
    parts = [p.strip() for p in gold.split(",")]
    if len(parts) > 1 and "(" not in gold and "[" not in gold:
        out.append(", ".join(reversed(parts)))
    return out


def perturbations(gold: str) -> list[str]:
    """Near misses: a number off by one, the sign flipped, ``+1`` appended, ``2`` prepended."""
    out = [f"{gold}+1", f"2{gold}", gold[1:] if gold.startswith("-") else f"-{gold}"]
    nums = list(_INT_RE.finditer(gold))
    if nums:
        m = nums[-1]
        out.append(gold[: m.start()] + str(int(m.group()) + 1) + gold[m.end() :])
    return out


def pairs_for(
    task: str, items: Sequence[tuple[str, str]], per_source: int, rng: random.Random
) -> Iterator[tuple[str, str, str]]:
    """(source, gold, prediction) triples for one benchmark."""
    all_golds = [g for g, _ in items]
    for gold, solution in items:
        if not gold or len(gold) > MAX_LEN:
            continue
        for p in solution_math(task, solution, per_source):
            yield "solution", gold, p
        for p in spellings(gold):
            yield "spelling", gold, p
        for p in perturbations(gold):
            yield "perturbation", gold, p
        for _ in range(per_source):
            other = rng.choice(all_golds)
            if len(other) <= MAX_LEN:
                yield "neighbour", gold, other


def build_pairs(per_source: int, seed: int) -> list[tuple[str, str, str, str]]:
    """Distinct unordered (task, source, a, b) pairs with a != b, in a fixed order."""
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    out = []
    for task in TASKS:
        for source, a, b in pairs_for(task, golds(task), per_source, rng):
            key = (a, b) if a <= b else (b, a)
            if a.strip() == b.strip() or key in seen:
                continue
            seen.add(key)
            out.append((task, source, a, b))
    return out


def math_verify_verdicts(pairs: Sequence[tuple[str, str]], timeout: float) -> list[tuple[str, bool | None]]:
    """``verify(parse(a), parse(b))`` for each (a, b): (status, correct), in worker processes."""
    from rzero_bench.grading import _pool
    from rzero_bench.grading.normalize import prepare_for_math_verify

    pool = _pool()
    by_gold: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(pairs):
        by_gold.setdefault(a, []).append(i)
    jobs = []
    for a, idx in by_gold.items():
        for k in range(0, len(idx), 16):
            part = idx[k : k + 16]
            payload = (prepare_for_math_verify(a), [prepare_for_math_verify(pairs[i][1]) for i in part])
            jobs.append((part, pool.submit("grade", payload, timeout)))
    out: list[tuple[str, bool | None]] = [("error", None)] * len(pairs)
    for part, fut in jobs:
        try:
            results = fut.result()
        except Exception as exc:  # noqa: BLE001 - counted as an error, never a verdict
            results = [("error", None, str(exc))] * len(part)
        for i, (status, correct, _detail) in zip(part, results, strict=True):
            out[i] = (status, correct if status == "ok" else None)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-source", type=int, default=3, help="solution formulas and neighbours per item")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="check only the first N decided pairs")
    ap.add_argument("--timeout", type=float, default=10.0, help="math-verify seconds per item")
    ap.add_argument("--out", type=Path, default=None, help="write every decided pair's verdicts (JSONL)")
    ap.add_argument(
        "--reuse",
        type=Path,
        default=None,
        help="take math-verify's verdicts from an earlier --out file where it has them (same math-verify)",
    )
    args = ap.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    sys.path.insert(0, str(ROOT))
    from rzero_bench.grading import shutdown_pool
    from rzero_bench.grading.cheap import decide_pair

    start = time.perf_counter()
    pairs = build_pairs(args.per_source, args.seed)
    fast = [decide_pair(a, b) for _, _, a, b in pairs]
    asym = [i for i, (_, _, a, b) in enumerate(pairs) if decide_pair(b, a) != fast[i]]
    decided = [i for i, d in enumerate(fast) if d is not None]
    if args.limit is not None:
        decided = decided[: args.limit]
    fast_s = time.perf_counter() - start
    known: dict[tuple[str, str], tuple[tuple[str, bool | None], tuple[str, bool | None]]] = {}
    if args.reuse is not None:
        for line in args.reuse.open(encoding="utf-8"):
            row = json.loads(line)
            (fs, bs), (fc, bc) = row["status"], row["math_verify"]
            if fs == bs == "ok":
                known[row["a"], row["b"]] = ((fs, fc), (bs, bc))
                known[row["b"], row["a"]] = ((bs, bc), (fs, fc))
    todo = [i for i in decided if (pairs[i][2], pairs[i][3]) not in known]
    fw_new = math_verify_verdicts([(pairs[i][2], pairs[i][3]) for i in todo], args.timeout)
    bw_new = math_verify_verdicts([(pairs[i][3], pairs[i][2]) for i in todo], args.timeout)
    shutdown_pool()
    for i, fw, bw in zip(todo, fw_new, bw_new, strict=True):
        known[pairs[i][2], pairs[i][3]] = (fw, bw)
    forward = [known[pairs[i][2], pairs[i][3]][0] for i in decided]
    backward = [known[pairs[i][2], pairs[i][3]][1] for i in decided]

    counts: Counter[str] = Counter()
    by_source: Counter[tuple[str, str]] = Counter()
    bad: list[tuple[int, str]] = []
    rows = []
    for i, fw, bw in zip(decided, forward, backward, strict=True):
        task, source, a, b = pairs[i]
        if fw[0] != "ok" or bw[0] != "ok":
            status = "timeout" if "timeout" in (fw[0], bw[0]) else "unparseable/error"
        elif fw[1] == fast[i] and bw[1] == fast[i]:
            status = "agree"
        else:
            status = "DISAGREE"
            bad.append((i, f"math-verify {a!r} vs {b!r}: {fw[1]}, reversed: {bw[1]}; fast path: {fast[i]}"))
        counts[status] += 1
        by_source[source, status] += 1
        rows.append(
            {
                "task": task,
                "source": source,
                "a": a,
                "b": b,
                "fast": fast[i],
                "math_verify": [fw[1], bw[1]],
                "status": [fw[0], bw[0]],
            }
        )
    if args.out is not None:
        from rzero_bench.store import atomic_write_jsonl

        atomic_write_jsonl(args.out, rows)

    total = time.perf_counter() - start
    n_dec = sum(d is not None for d in fast)
    print(f"Fast path vs math-verify on {DATA} (seed {args.seed}, {args.per_source} per source)\n")
    print(
        f"- distinct answer pairs: {len(pairs):,}; decided by the fast path: {n_dec:,} "
        f"({n_dec / max(1, len(pairs)):.1%}); left to math-verify: {len(pairs) - n_dec:,}"
    )
    print(f"- fast path verdicts depending on the argument order: {len(asym)}")
    reused = f" ({len(decided) - len(todo):,} verdicts from {args.reuse})" if args.reuse else ""
    print(f"- decided pairs checked against math-verify in both directions: {len(decided):,}{reused}")
    for status in ("agree", "DISAGREE", "timeout", "unparseable/error"):
        per = ", ".join(
            f"{s} {by_source[s, status]}" for s in ("solution", "spelling", "perturbation", "neighbour")
        )
        print(f"  - {status}: {counts[status]:,} ({per})")
    print(f"- time: fast path {fast_s:.1f} s, total {total:.0f} s")
    for _, msg in bad:
        print("DISAGREE " + msg)
    for i in asym[:20]:
        print(f"ORDER-DEPENDENT {pairs[i][2]!r} vs {pairs[i][3]!r}")
    return 1 if bad or asym else 0


if __name__ == "__main__":
    raise SystemExit(main())
