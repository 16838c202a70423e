"""Challenger reward: exact numbers for both variants, BLEU vs nltk, clustering vs scikit-learn."""

from __future__ import annotations

import hashlib
import math
import random
import warnings

import numpy as np
import pytest

from rzero_bench.selfplay.bleu import bleu_distance_matrix, sentence_bleu
from rzero_bench.selfplay.cluster import average_linkage_labels, canonical_labels
from rzero_bench.selfplay.rewards import (
    ChallengerRewardOptions,
    challenger_rewards,
    cluster_questions,
    local_slice,
    repetition_penalties,
    uncertainty_reward,
)

LONG_A = "Let f of x equal x squared plus three x minus seven . Find the sum of all real roots of f ."
LONG_B = "A bag holds five red and four blue balls . Two are drawn . What is the probability both are red ?"
LONG_C = "How many positive integers below one thousand are divisible by seven but not by eleven ?"


# ---------------------------------------------------------------- uncertainty


@pytest.mark.parametrize(
    ("p", "paper", "official"),
    [
        (0.0, 0.0, 0.0),
        (1.0, 0.0, 0.0),
        (0.5, 1.0, 0.5),
        (0.25, 0.5, 0.25),
        (0.75, 0.5, 0.25),
        (0.125, 0.25, 0.125),
    ],
)
def test_uncertainty_exact(p: float, paper: float, official: float) -> None:
    assert uncertainty_reward(p, "paper") == paper
    assert uncertainty_reward(p, "official") == official


def test_uncertainty_tenths() -> None:
    assert uncertainty_reward(0.3) == pytest.approx(0.6, abs=1e-15)
    assert uncertainty_reward(0.9) == pytest.approx(0.2, abs=1e-15)
    assert uncertainty_reward(0.9, "official") == pytest.approx(0.1, abs=1e-15)
    assert uncertainty_reward(0.3, "official") == 0.3


def test_uncertainty_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        uncertainty_reward(1.5)
    with pytest.raises(ValueError):
        uncertainty_reward(0.5, "nope")  # type: ignore[arg-type]


# ---------------------------------------------------------------- BLEU


def test_bleu_hand_computed() -> None:
    # identical 4+ token strings: every precision 1, BP 1
    assert sentence_bleu("a b c d".split(), "a b c d".split()) == 1.0
    # identical 2-token strings: p3 = p4 = 0.1 / 1 after method-1 smoothing
    assert sentence_bleu(["x", "y"], ["x", "y"]) == math.exp(0.5 * math.log(0.1))
    # no unigram match: 0, whatever the smoothing
    assert sentence_bleu(["a"], ["b"]) == 0.0
    assert sentence_bleu([], ["b"]) == 0.0
    # hypothesis shorter than reference: BP = exp(1 - 4/2)
    assert sentence_bleu(["a", "b"], "a b c d".split()) == math.exp(1 - 2) * math.exp(0.5 * math.log(0.1))


PAIRS = [
    ("the cat sat on the mat", "the cat is on the mat"),
    ("what is the sum of two numbers", "what is the value of x"),
    ("the the the the", "the cat"),
    ("a b c d e f g", "a b c d e f g h i j"),
    ("find the remainder when 7 ^ 100 is divided by 13", "find the remainder when 7 ^ 101 is divided by 13"),
    ("one", "one"),
    ("", "anything"),
    ("x y z", "x y z"),
]


# Reference values from nltk 3.9 ``sentence_bleu([ref.split()], hyp.split(), ...)`` as float.hex:
# (smoothing method1 as the official code uses it, no smoothing = nltk's default method0).
NLTK_BLEU = {
    ("the cat sat on the mat", "the cat is on the mat"): ("0x1.0429f9beb38bap-2", "0x1.ae89f995ad442p-257"),
    ("the cat is on the mat", "the cat sat on the mat"): ("0x1.0429f9beb38bap-2", "0x1.ae89f995ad442p-257"),
    ("what is the sum of two numbers", "what is the value of x"): (
        "0x1.67c6bfbed6471p-3",
        "0x1.3fe436097f148p-257",
    ),
    ("what is the value of x", "what is the sum of two numbers"): (
        "0x1.78653ec92261ap-3",
        "0x1.37719eca62660p-257",
    ),
    ("the the the the", "the cat"): ("0x1.4915936678881p-4", "0x1.fffffffffffb1p-768"),
    ("the cat", "the the the the"): ("0x1.c2a6065698bcbp-5", "0x1.bffc073a28807p-769"),
    ("a b c d e f g", "a b c d e f g h i j"): ("0x1.4d896b8eddab2p-1", "0x1.4d896b8eddab2p-1"),
    ("a b c d e f g h i j", "a b c d e f g"): ("0x1.47238cf17c239p-1", "0x1.47238cf17c239p-1"),
    (
        "find the remainder when 7 ^ 100 is divided by 13",
        "find the remainder when 7 ^ 101 is divided by 13",
    ): ("0x1.6743a43d1a401p-1", "0x1.6743a43d1a401p-1"),
    (
        "find the remainder when 7 ^ 101 is divided by 13",
        "find the remainder when 7 ^ 100 is divided by 13",
    ): ("0x1.6743a43d1a401p-1", "0x1.6743a43d1a401p-1"),
    ("one", "one"): ("0x1.6c310e3769f3fp-3", "0x1.6a09e667f3ae6p-767"),
    ("", "anything"): ("0x0.0p+0", "0x0.0p+0"),
    ("anything", ""): ("0x0.0p+0", "0x0.0p+0"),
    ("x y z", "x y z"): ("0x1.1feb33c1c381ep-1", "0x1.6a09e667f3bf8p-256"),
}


@pytest.mark.parametrize(("hyp", "ref"), list(NLTK_BLEU))
def test_bleu_equals_nltk_golden(hyp: str, ref: str) -> None:
    want1, want0 = (float.fromhex(x) for x in NLTK_BLEU[(hyp, ref)])
    assert sentence_bleu(hyp.split(), ref.split()) == want1
    assert sentence_bleu(hyp.split(), ref.split(), smoothing="method0") == want0


@pytest.mark.slow
@pytest.mark.parametrize(("hyp", "ref"), PAIRS)
def test_bleu_equals_nltk_live(hyp: str, ref: str) -> None:
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    smooth = nltk_bleu.SmoothingFunction()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for h, r in ((hyp, ref), (ref, hyp)):
            want1 = nltk_bleu.sentence_bleu([r.split()], h.split(), smoothing_function=smooth.method1)
            assert sentence_bleu(h.split(), r.split()) == want1
            want0 = nltk_bleu.sentence_bleu([r.split()], h.split())
            assert sentence_bleu(h.split(), r.split(), smoothing="method0") == want0


def _random_questions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "what is the sum of two numbers x y find value if a b and 3 5 7 12 prime integer".split()
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 16))) for _ in range(n)]
    # near-duplicates: copies with one word changed
    for k in range(n // 3):
        toks = base[k].split() or ["x"]
        toks[rng.randrange(len(toks))] = rng.choice(words)
        base.append(" ".join(toks))
    return base


def _nltk_matrix(texts: list[str]) -> np.ndarray:
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    smoother = nltk_bleu.SmoothingFunction().method1
    n = len(texts)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            s = nltk_bleu.sentence_bleu([texts[j].split()], texts[i].split(), smoothing_function=smoother)
            dist[i, j] = dist[j, i] = 1 - s
    return dist


# sha256 of the official construction's matrix (nltk loop, see _nltk_matrix) on _random_questions(40, 1)
MATRIX_SHA = "430669634f3823a3c626686d6eaf020ab36424ab2ce18e189cd1671609a6b879"


def test_distance_matrix_bitwise_equal_to_official_construction() -> None:
    d = bleu_distance_matrix(_random_questions(40, seed=1))
    assert hashlib.sha256(d.tobytes()).hexdigest() == MATRIX_SHA


@pytest.mark.slow
def test_distance_matrix_bitwise_equal_live() -> None:
    texts = _random_questions(40, seed=1)
    assert np.array_equal(bleu_distance_matrix(texts), _nltk_matrix(texts))


def test_distance_matrix_is_asymmetric_bleu_made_symmetric() -> None:
    texts = ["a b c d e f", "a b c d"]
    d = bleu_distance_matrix(texts)
    assert d[0, 1] == d[1, 0] == 1 - sentence_bleu(texts[0].split(), texts[1].split())
    assert d[0, 1] != 1 - sentence_bleu(texts[1].split(), texts[0].split())
    assert d[0, 0] == d[1, 1] == 0.0


# ---------------------------------------------------------------- clustering


# scikit-learn AgglomerativeClustering(precomputed, average, threshold) labels on _nltk_matrix of
# _random_questions(45, seed), canonical (first appearance), one character per label (chr(48 + k)).
SKLEARN_LABELS = {
    (0, 0.3): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\0]2^_`ab89:cd=>",
    (0, 0.5): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\0]2^4_`a89:bc=>",
    (0, 0.7): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\0]2^4_`a89:;b=>",
    (1, 0.3): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]1^_`56ab9:;<=c",
    (1, 0.5): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]1^_`567a9:;<=b",
    (1, 0.7): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]1^_`567a9:;<=b",
    (2, 0.3): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_345`789ab<=c",
    (2, 0.5): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^2345_789`a<=b",
    (2, 0.7): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^2345_789`a<=b",
    (3, 0.3): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^234_6`abc;de>",
    (3, 0.5): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\0]23456^_`a;<b>",
    (3, 0.7): "0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\0]23456^8_`;<a>",
}


@pytest.mark.parametrize(("seed", "threshold"), list(SKLEARN_LABELS))
def test_clustering_equals_sklearn_golden(seed: int, threshold: float) -> None:
    want = [ord(c) - 48 for c in SKLEARN_LABELS[(seed, threshold)]]
    assert cluster_questions(_random_questions(45, seed=seed), threshold) == want


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_clustering_equals_sklearn_live(seed: int) -> None:
    cluster_mod = pytest.importorskip("sklearn.cluster")
    texts = _random_questions(45, seed=seed)
    dist = _nltk_matrix(texts)
    for threshold in (0.3, 0.5, 0.7):
        model = cluster_mod.AgglomerativeClustering(
            n_clusters=None, distance_threshold=threshold, metric="precomputed", linkage="average"
        )
        want = canonical_labels(model.fit_predict(dist))
        assert average_linkage_labels(dist, threshold) == want
        assert cluster_questions(texts, threshold) == want


def test_clustering_tie_breaking_matches_sklearn() -> None:
    # a-b and b-c tie at 0.3, a-c far: the tie decides whether b joins a or c;
    # scikit-learn (SciPy's nearest-neighbour chain) gives [0, 0, 1, 1]
    dist = np.array([[0, 0.3, 0.9, 0.9], [0.3, 0, 0.3, 0.9], [0.9, 0.3, 0, 0.3], [0.9, 0.9, 0.3, 0]])
    assert average_linkage_labels(dist, 0.5) == [0, 0, 1, 1]


def test_threshold_is_strict() -> None:
    dist = np.array([[0.0, 0.5], [0.5, 0.0]])
    assert average_linkage_labels(dist, 0.5) == [0, 1]
    assert average_linkage_labels(dist, 0.5000001) == [0, 0]


def test_cluster_small_batches() -> None:
    assert cluster_questions([]) == []
    assert cluster_questions([LONG_A]) == [0]  # B = 1 (scikit-learn would refuse one sample)
    assert cluster_questions([LONG_A, LONG_A, LONG_B, LONG_A]) == [0, 0, 1, 0]
    # identical questions of fewer than 3 tokens are NOT clustered: smoothed BLEU = 0.316 < 0.5
    assert cluster_questions(["x y", "x y"]) == [0, 1]
    assert cluster_questions(["x y z", "x y z"]) == [0, 0]  # BLEU = 0.1 ** 0.25 = 0.562


# ---------------------------------------------------------------- repetition penalty


def test_repetition_penalties_exact() -> None:
    texts = [LONG_A, LONG_A, LONG_B, LONG_A]
    assert repetition_penalties(texts) == [0.75, 0.75, 0.25, 0.75]
    assert repetition_penalties(texts, lam=0.5) == [0.375, 0.375, 0.125, 0.375]
    assert repetition_penalties(texts, batch_size=8) == [0.375, 0.375, 0.125, 0.375]
    assert repetition_penalties([LONG_A]) == [1.0]  # B = 1
    assert repetition_penalties([]) == []
    with pytest.raises(ValueError):
        repetition_penalties(texts, batch_size=2)


def test_local_slice() -> None:
    gathered = list(range(8))
    assert local_slice(gathered, 1, 4) == [2, 3]
    with pytest.raises(ValueError):
        local_slice(gathered, 0, 3)


# ---------------------------------------------------------------- challenger_rewards


def completion(question: str | None, answer: str | None = "42") -> str:
    parts = ["<think>some reasoning</think>"]
    if question is not None:
        parts.append(f"<question>{question}</question>")
    if answer is not None:
        parts.append(f"\\boxed{{{answer}}}")
    return "\n".join(parts)


BATCH = [
    completion(LONG_A),
    completion(LONG_A),
    completion(LONG_B),
    completion(None),  # no question block
    completion(LONG_C, answer=None),  # no boxed answer
    completion(LONG_C, answer=""),  # empty boxed answer
    completion(LONG_C),
    completion("   "),  # blank question
]
P_HATS = [0.5, 0.5, 0.25, None, 0.5, 0.5, 0.9, None]


def test_challenger_rewards_paper() -> None:
    scores = challenger_rewards(BATCH, P_HATS, variant="paper")
    assert [s.well_formed for s in scores] == [True, True, True, False, False, False, True, False]
    # clusters over well-formed only: {A, A}, {B}, {C}; B = 8 completions
    assert [s.repetition for s in scores] == [0.25, 0.25, 0.125, 0, 0, 0, 0.125, 0]
    assert [s.uncertainty for s in scores][:3] == [1.0, 1.0, 0.5]
    assert scores[6].uncertainty == pytest.approx(0.2, abs=1e-15)
    assert [s.reward for s in scores][:6] == [0.75, 0.75, 0.375, 0.0, 0.0, 0.0]
    assert scores[6].reward == pytest.approx(0.075, abs=1e-15)
    assert scores[7].reward == 0.0
    assert scores[0].cluster == scores[1].cluster != scores[2].cluster
    assert scores[3].cluster == -1 and scores[3].p_hat is None
    assert scores[0].text == LONG_A


def test_challenger_rewards_paper_clips_at_zero() -> None:
    batch = [completion(LONG_A)] * 4
    scores = challenger_rewards(batch, [0.9] * 4)
    # r_unc = 0.2, r_rep = 4/4 = 1: max(0, 0.2 - 1) = 0
    assert [s.reward for s in scores] == [0.0] * 4
    assert [s.repetition for s in scores] == [1.0] * 4


def test_challenger_rewards_official() -> None:
    scores = challenger_rewards(BATCH, P_HATS, variant="official")
    # min(p, 1-p) - |C|/B, unclipped; malformed: -1 - 1/B (its empty question is a singleton)
    assert scores[0].reward == 0.5 - 0.25
    assert scores[2].reward == 0.25 - 0.125
    assert scores[6].reward == pytest.approx(0.1 - 0.125, abs=1e-15)
    assert scores[6].reward < 0
    for i in (3, 4, 5, 7):
        assert scores[i].reward == -1.0 - 0.125
        assert scores[i].repetition == 0.125


def test_challenger_rewards_options_and_overrides() -> None:
    batch = [completion(LONG_A), completion(LONG_B, answer=None)]
    # without the answer requirement the second completion is well-formed
    s = challenger_rewards(batch, [0.5, 0.5], require_answer=False)
    assert [x.well_formed for x in s] == [True, True]
    assert [x.reward for x in s] == [0.5, 0.5]
    # a config-like object (SelfPlayConfig field names) is accepted
    cfg = type(
        "Cfg",
        (),
        {
            "reward_variant": "official",
            "lam": 2.0,
            "bleu_threshold": 0.5,
            "format_penalty": -0.5,
            "require_boxed": True,
        },
    )()
    s = challenger_rewards(batch, [0.5, None], cfg)
    assert s[0].reward == 0.5 - 2.0 * 1 / 2
    assert s[1].reward == -0.5 - 2.0 / 2
    # a dataclass, with a keyword override on top
    opts = ChallengerRewardOptions(variant="official", clip=True)
    s = challenger_rewards(batch, [0.5, None], opts, penalize_malformed=False)
    assert [x.reward for x in s] == [0.0, -1.0]


def test_challenger_rewards_single_and_empty() -> None:
    s = challenger_rewards([completion(LONG_A)], [0.5])  # B = 1
    assert s[0].repetition == 1.0 and s[0].reward == 0.0
    assert challenger_rewards([], []) == []
    with pytest.raises(ValueError):
        challenger_rewards([completion(LONG_A)], [])


def test_challenger_rewards_gathered_batch_slice() -> None:
    # two ranks of 4: the penalty over the gathered 8 differs from per-rank clustering
    full = challenger_rewards(BATCH, P_HATS)
    rank1 = local_slice(full, 1, 2)
    assert [s.reward for s in rank1] == [s.reward for s in full[4:]]
    alone = challenger_rewards(BATCH[:4], P_HATS[:4])
    assert alone[0].repetition == 0.5 != full[0].repetition


def _templated(n: int, seed: int) -> list[str]:
    """Templated questions that differ in a few numbers/names: many real BLEU clusters."""
    rng = random.Random(seed)
    templates = [
        "Find the remainder when {a} ^ {b} is divided by {c} .",
        "{n} has {a} apples and gives {b} to a friend who had {c} . How many apples does the friend have now ?",
        "A rectangle has perimeter {a} and one side {b} . What is its area ?",
        "How many positive integers n below {a} satisfy n ^ 2 = {b} mod {c} ?",
    ]
    names = ["Ann", "Bo", "Cy", "Di"]
    return [
        rng.choice(templates).format(
            a=rng.randint(2, 30), b=rng.randint(2, 30), c=rng.randint(2, 30), n=rng.choice(names)
        )
        for _ in range(n)
    ]


TEMPLATED_LABELS = "0123343005020050640330063430044434333370"


def test_templated_clustering_equals_sklearn_golden() -> None:
    # canonical scikit-learn labels (threshold 0.5) on _templated(40, seed=7), one char per label
    want = [ord(c) - 48 for c in TEMPLATED_LABELS]
    assert cluster_questions(_templated(40, seed=7)) == want
    assert len(set(want)) < 40  # real clusters, not all singletons


@pytest.mark.slow
def test_templated_clustering_equals_sklearn_live() -> None:
    cluster_mod = pytest.importorskip("sklearn.cluster")
    texts = _templated(40, seed=7)
    model = cluster_mod.AgglomerativeClustering(
        n_clusters=None, distance_threshold=0.5, metric="precomputed", linkage="average"
    )
    assert cluster_questions(texts) == canonical_labels(model.fit_predict(_nltk_matrix(texts)))
