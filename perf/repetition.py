"""Repetition-penalty clustering: ours vs the official code's nltk + scikit-learn composition.

The official R-Zero code computes ``1 - sentence_bleu([x_j.split()], x_i.split(), method1)`` for
every pair i < j with nltk, then ``AgglomerativeClustering(metric="precomputed",
linkage="average", distance_threshold=0.5)``. We check that our labels are identical (up to
renaming) on realistic, templated maths questions with near-duplicates, and time both.

    .venv/bin/python perf/repetition.py                 # B = 64, 256, 1024 (+ ours at 2048)
    .venv/bin/python perf/repetition.py --sizes 64,256  # choose sizes
    .venv/bin/python perf/repetition.py --ours-only 2048,4096

Needs the ``perf`` extra (nltk, scikit-learn) for the reference.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rzero_bench.selfplay.cluster import canonical_labels  # noqa: E402
from rzero_bench.selfplay.rewards import cluster_questions  # noqa: E402

NAMES = ["Alice", "Bob", "Carla", "Deepak", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal"]
ITEMS = ["apples", "marbles", "books", "coins", "stamps", "pencils", "cards", "shells"]
SHAPES = ["rectangle", "triangle", "square", "trapezoid", "rhombus", "circle"]
TEMPLATES = [
    "Let $f(x) = {a}x^2 + {b}x - {c}$. Find the sum of all real values of $x$ such that $f(f(x)) = {d}$.",
    "{n1} has {a} {it} and gives {b} of them to {n2}, who already had {c}. {n2} then buys {d} more. "
    "How many {it} does {n2} have now?",
    "A {sh} has a perimeter of {a} units and one side of length {b} units. What is its largest possible area?",
    "How many positive integers $n \\le {a}{b}$ satisfy $n^2 \\equiv {c} \\pmod{{{d}}}$?",
    "Find the remainder when ${a}^{{{b}{c}}}$ is divided by ${d}$.",
    "The sequence $a_1, a_2, \\dots$ satisfies $a_1 = {a}$ and $a_{{n+1}} = {b} a_n - {c}$ for $n \\ge 1$. "
    "Compute $a_{{{d}}} \\bmod 1000$.",
    "In triangle $ABC$, $AB = {a}$, $BC = {b}$ and $CA = {c}$. Point $D$ lies on $BC$ with $BD = {d}$. Find $AD^2$.",
    "A bag contains {a} red, {b} blue and {c} green balls. {d} balls are drawn without replacement. "
    "What is the probability that all of them have the same colour? Express it as a common fraction.",
    "Solve for real $x$: $\\sqrt{{x + {a}}} + \\sqrt{{x - {b}}} = {c}$.",
    "What is the number of ordered pairs of integers $(x, y)$ with $x^2 + y^2 \\le {a}{b}$ and $x + y$ divisible by {c}?",
    "{n1} reads {a} pages on Monday and {b} more pages each day than the day before. After {c} days, "
    "how many pages has {n1} read in total?",
    "Let $P(x)$ be a monic cubic with roots $r, s, t$ such that $r + s + t = {a}$ and $rst = {b}$. "
    "If $P({c}) = {d}$, find $rs + st + tr$.",
]
FREE_WORDS = (
    "prove determine compute integer polynomial sequence geometric expected value divisor lattice "
    "circle chord tangent modulo prime graph vertices edges coloring permutation matrix determinant "
    "inequality maximum minimum real positive distinct digits sum product"
).split()


def make_questions(size: int, seed: int = 0, near_dup_share: float = 0.15) -> list[str]:
    """Varied templated maths questions, some free-form, with a share of near-duplicates."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < size:
        if out and rng.random() < near_dup_share:
            base = rng.choice(out).split()
            k = rng.randrange(len(base))
            base[k] = str(rng.randint(2, 99)) if rng.random() < 0.7 else rng.choice(FREE_WORDS)
            out.append(" ".join(base))
            continue
        if rng.random() < 0.15:
            out.append(" ".join(rng.choice(FREE_WORDS) for _ in range(rng.randint(6, 30))) + "?")
            continue
        t = rng.choice(TEMPLATES)
        out.append(
            t.format(
                a=rng.randint(2, 60),
                b=rng.randint(2, 60),
                c=rng.randint(2, 60),
                d=rng.randint(2, 60),
                n1=rng.choice(NAMES),
                n2=rng.choice(NAMES),
                it=rng.choice(ITEMS),
                sh=rng.choice(SHAPES),
            )
        )
    return out


def reference_labels(texts: list[str], threshold: float = 0.5) -> list[int]:
    """The official code's composition: nltk sentence_bleu pairwise + scikit-learn clustering."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from sklearn.cluster import AgglomerativeClustering

    n = len(texts)
    dist = np.zeros((n, n))
    smoother = SmoothingFunction().method1
    for i in range(n):
        for j in range(i, n):
            score = (
                1.0
                if i == j
                else sentence_bleu([texts[j].split()], texts[i].split(), smoothing_function=smoother)
            )
            dist[i, j] = dist[j, i] = 1 - score
    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="average"
    )
    return canonical_labels(model.fit_predict(dist))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,256,1024", help="B values run against the reference")
    ap.add_argument("--ours-only", default="2048", help="B values run with our implementation only")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    ours_only = [int(s) for s in args.ours_only.split(",") if s]
    if sizes:  # import (and warm up) the reference outside the timed region
        reference_labels(make_questions(4, seed=1), args.threshold)
    cluster_questions(make_questions(4, seed=1), args.threshold)
    rows: list[tuple[int, float, float | None, str, int]] = []
    ref_fit: list[tuple[int, float]] = []
    ok = True
    for b in sizes + ours_only:
        texts = make_questions(b, seed=args.seed + b)
        t0 = time.perf_counter()
        ours = cluster_questions(texts, args.threshold)
        t_ours = time.perf_counter() - t0
        n_clusters = len(set(ours))
        if b in sizes:
            t0 = time.perf_counter()
            ref = reference_labels(texts, args.threshold)
            t_ref: float | None = time.perf_counter() - t0
            same = ref == ours
            ok &= same
            ref_fit.append((b, t_ref))
            rows.append((b, t_ours, t_ref, "yes" if same else "NO", n_clusters))
        else:
            rows.append((b, t_ours, None, "-", n_clusters))
        print(f"B={b}: ours {t_ours:.3f}s, clusters {n_clusters}", file=sys.stderr, flush=True)
    # reference time is quadratic in B (one nltk call per pair): extrapolate from the largest run
    if ref_fit:
        b0, t0_ref = ref_fit[-1]
        coef = t0_ref / (b0 * (b0 - 1) / 2)
    print("| B | ours (s) | reference nltk + sklearn (s) | speed-up | identical labels | clusters |")
    print("|---:|---:|---:|---:|:---:|---:|")
    for b, t_o, t_r, same, nc in rows:
        if t_r is None and ref_fit:
            est = coef * b * (b - 1) / 2
            print(
                f"| {b} | {t_o:.3f} | ~{est:.0f} (extrapolated, not run) | ~{est / t_o:.0f}x | {same} | {nc} |"
            )
        else:
            ref_txt = f"{t_r:.3f}" if t_r is not None else "not run"
            speed = f"{t_r / t_o:.0f}x" if t_r is not None else "-"
            print(f"| {b} | {t_o:.3f} | {ref_txt} | {speed} | {same} | {nc} |")
    if len(rows) >= 2:
        print("\nGrowth (time ratio per doubling of B, log2 slope):")
        for (b1, o1, r1, *_), (b2, o2, r2, *_) in zip(rows, rows[1:], strict=False):
            s_o = math.log(o2 / o1) / math.log(b2 / b1)
            s_r = f"{math.log(r2 / r1) / math.log(b2 / b1):.2f}" if r1 and r2 else "-"
            print(f"  B {b1} -> {b2}: ours exponent {s_o:.2f}, reference exponent {s_r}")
    if not ok:
        print("\nMISMATCH: labels differ from the reference", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
