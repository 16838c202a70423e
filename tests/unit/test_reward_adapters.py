"""Reward adapters (TRL contract) with a scripted solver: exact numbers for both variants."""

from __future__ import annotations

import functools
import json

import pytest

from rzero_bench.backends.scripted import ScriptedGenerator
from rzero_bench.records import GenerationRequest
from rzero_bench.selfplay.voting import vote
from rzero_bench.training.rewards import (
    ChallengerReward,
    SolverReward,
    SolverRewardOptions,
    challenger_question,
    completion_text,
)

SOLVER_PROMPT = {"system": "Solve.", "user": "{question}"}

# Four completions, B = 4. Questions share no words, so each is its own BLEU cluster: r_rep = 1/4.
HALF = "<question>What is the sum of seven and eight apples</question>\nso \\boxed{15}"
SURE = "<question>Find the derivative of x cubed quickly</question> \\boxed{3x^2}"
NO_TAGS = "just text \\boxed{3}"
NO_BOX = "<question>How many primes lie below twenty</question>"
BATCH = [HALF, SURE, NO_TAGS, NO_BOX]


def responder(request: GenerationRequest, index: int) -> str:
    """The solver agrees 5/10 on the apples question and 10/10 on the derivative."""
    question = request.messages[-1]["content"]
    if "apples" in question:
        return "\\boxed{15}" if index < 5 else f"\\boxed{{{100 + index}}}" if index >= 8 else "\\boxed{14}"
    if "derivative" in question:
        return "so it is \\boxed{3x^2}"
    return "no idea"


class FakeDist:
    """Rank ``process_index`` of ``num_processes``; the other ranks' items are given."""

    def __init__(self, rank: int, others: dict[int, list], world: int) -> None:
        self.process_index = rank
        self.num_processes = world
        self.others = others

    def gather(self, items):
        return [items if r == self.process_index else self.others[r] for r in range(self.num_processes)]


def exact_classes(answers, *, kind="math", timeout=5.0):
    """Exact-string equivalence classes, largest first (ties: earliest first index)."""
    first: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        first.setdefault(a.strip(), []).append(i)
    return sorted(first.values(), key=lambda c: (-len(c), c[0]))


exact_vote = functools.partial(vote, classes_fn=exact_classes)


def single() -> FakeDist:
    return FakeDist(0, {}, 1)


def make(
    variant: str = "paper", *, m: int = 10, log_path=None, dist=None, **opts
) -> tuple[ChallengerReward, ScriptedGenerator]:
    solver = ScriptedGenerator(responder)
    options = {"variant": variant, "lam": 1.0, "threshold": 0.5, "require_boxed": True, **opts}
    if variant == "official":
        options.setdefault("format_penalty", -1.0)
    reward = ChallengerReward(
        solver=solver,
        solver_prompt=SOLVER_PROMPT,
        m=m,
        reward_options=options,
        log_path=log_path,
        solver_max_tokens=64,
        dist=dist or single(),
        vote_fn=exact_vote,
    )
    return reward, solver


def test_completion_text_handles_trl_forms():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "xyz"}]) == "xyz"
    assert completion_text({"role": "assistant", "content": "q"}) == "q"
    assert completion_text([]) == ""


def test_challenger_question_gate():
    assert challenger_question(HALF) == "What is the sum of seven and eight apples"
    assert challenger_question(NO_TAGS) is None
    assert challenger_question(NO_BOX) is None
    assert challenger_question(NO_BOX, require_boxed=False) == "How many primes lie below twenty"
    assert challenger_question("<question>  </question> \\boxed{1}") is None


def test_p_hats_one_solver_call_for_the_batch():
    reward, solver = make()
    p = reward.p_hats(BATCH + [HALF])  # the duplicate question is asked once
    assert p == [0.5, 1.0, None, None, 0.5]
    assert len(solver.requests) == 2
    for req in solver.requests:
        assert req.params.n == 10 and req.params.temperature == 1.0 and req.params.max_tokens == 64
        assert req.messages[0] == {"role": "system", "content": "Solve."}


def test_paper_variant_exact_numbers(tmp_path):
    log = tmp_path / "challenger_rewards.jsonl"
    reward, _ = make("paper", log_path=log)
    completions = [[{"role": "assistant", "content": t}] for t in BATCH]
    out = reward(prompts=[[]] * 4, completions=completions, trainer_state=None)
    # apples: p = 0.5 -> r_unc = 1 - 2|0.5 - 0.5| = 1.0, r_rep = 1/4 -> 0.75
    # derivative: p = 1.0 -> r_unc = 0 -> max(0, 0 - 0.25) = 0; malformed -> 0 (paper)
    assert out == pytest.approx([0.75, 0.0, 0.0, 0.0])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 4
    assert rows[0]["uncertainty"] == pytest.approx(1.0) and rows[0]["p_hat"] == pytest.approx(0.5)
    assert rows[0]["repetition"] == pytest.approx(0.25) and rows[0]["well_formed"] is True
    assert [r["well_formed"] for r in rows] == [True, True, False, False]
    assert rows[0]["step"] == 0
    # a second call appends
    reward(prompts=[[]] * 4, completions=BATCH)
    assert len(log.read_text().splitlines()) == 8
    assert reward.history[0]["reward"] == pytest.approx(0.75 / 4)
    assert reward.history[0]["well_formed"] == pytest.approx(0.5)


def test_official_variant_exact_numbers():
    reward, _ = make("official")
    out = reward(completions=BATCH)
    # min(p, 1-p) = 0.5 - 1/4; 0 - 1/4 (no clip); malformed: -1 - 1/4
    assert out == pytest.approx([0.25, -0.25, -1.25, -1.25])


def test_identical_questions_share_a_cluster():
    reward, _ = make("paper")
    out = reward(completions=[HALF, HALF, HALF, SURE])
    # three identical questions: r_rep = 3/4 -> max(0, 1 - 0.75) = 0.25
    assert out == pytest.approx([0.25, 0.25, 0.25, 0.0])


def test_all_malformed_never_calls_the_solver():
    reward, solver = make("paper")
    assert reward(completions=[NO_TAGS, NO_BOX]) == [0.0, 0.0]
    assert solver.requests == []


def test_require_boxed_false_asks_about_unboxed_questions():
    reward, solver = make("paper", require_boxed=False)
    out = reward(completions=[NO_BOX, HALF, SURE])
    assert len(solver.requests) == 3
    assert out[0] == pytest.approx(0.0)  # solver never answers -> p_hat 0 -> r_unc 0
    assert out[1] == pytest.approx(2 / 3)  # 1.0 - 1/3


def test_m1_and_none_answers():
    reward, _ = make("paper", m=1)
    # one sample: p_hat = 1 whatever it says -> r_unc 0
    assert reward(completions=[HALF]) == [0.0]


def test_multi_process_scores_the_whole_batch_and_keeps_the_local_slice(tmp_path):
    full_reward, _ = make("paper")
    full = full_reward(completions=BATCH)
    # rank 0 holds BATCH[:2], rank 1 holds BATCH[2:]
    rank0_items = [(HALF, 0.5), (SURE, 1.0)]
    log = tmp_path / "r.jsonl"
    r1, solver1 = make("paper", log_path=log, dist=FakeDist(1, {0: rank0_items}, 2))
    assert r1(completions=BATCH[2:]) == pytest.approx(full[2:])
    assert solver1.requests == []  # rank 1's slice is malformed: it asks nothing
    assert not log.exists()  # only rank 0 writes the log
    r0, solver0 = make("paper", log_path=log, dist=FakeDist(0, {1: [(NO_TAGS, None), (NO_BOX, None)]}, 2))
    assert r0(completions=BATCH[:2]) == pytest.approx(full[:2])
    assert len(solver0.requests) == 2
    assert len(log.read_text().splitlines()) == 4


# ---- solver reward


def fake_grade_many(references, predictions, *, kind, timeout):
    from rzero_bench.records import Verdict

    return [
        Verdict(correct=(p is not None and p.strip() == r.strip()))
        for r, p in zip(references, predictions, strict=True)
    ]


def test_solver_reward_accuracy_only():
    reward = SolverReward(grade_many=fake_grade_many)
    out = reward(completions=["\\boxed{4}", "\\boxed{5}", "no box"], label=["4", "4", "4"])
    assert out == [1.0, 0.0, 0.0]
    assert reward.history[0]["accuracy"] == pytest.approx(1 / 3)


def test_solver_reward_official_mix():
    reward = SolverReward({"format_weight": 0.1}, grade_many=fake_grade_many)
    out = reward(
        completions=[[{"role": "assistant", "content": "\\boxed{4}"}], "\\boxed{5}", "no box"],
        label=["4", "4", "4"],
    )
    assert out == pytest.approx([1.0, 0.1, 0.0])


def test_solver_reward_format_regex():
    opts = SolverRewardOptions(format_weight=0.5, format_regex=r"<think>.*</think>.*\\boxed\{.*\}.*")
    reward = SolverReward(opts, grade_many=fake_grade_many)
    out = reward(completions=["<think>x</think> \\boxed{4}", "\\boxed{4}"], label=["4", "4"])
    assert out == pytest.approx([1.0, 0.5])


def test_solver_reward_needs_labels():
    with pytest.raises(ValueError, match="label"):
        SolverReward(grade_many=fake_grade_many)(completions=["\\boxed{1}"])
    with pytest.raises(ValueError):
        SolverRewardOptions(format_weight=1.5)


def test_solver_reward_real_grader_equivalence():
    grading = pytest.importorskip("rzero_bench.grading")
    if not hasattr(grading, "grade_many"):
        pytest.skip("rzero_bench.grading.grade_many not available yet")
    reward = SolverReward()
    out = reward(
        completions=["so \\boxed{\\frac{1}{2}}", "\\boxed{0.5}", "\\boxed{3}", "nothing"],
        label=["1/2", "1/2", "2", "2"],
    )
    assert out == [1.0, 1.0, 0.0, 0.0]


def test_reward_sign_flips_the_returned_rewards_only():
    from rzero_bench.training.rewards import ChallengerReward

    class Solver:
        def generate(self, requests, progress=None):
            from rzero_bench.records import Generation

            return [Generation(texts=tuple(f"\\boxed{{{j % 2}}}" for j in range(r.params.n))) for r in requests]

    texts = ["<question>What is 1+1?</question> \\boxed{2}", "no tags"]
    base = ChallengerReward(solver=Solver(), solver_prompt={"system": "s", "user": "{question}"}, m=4,
                            reward_options={"variant": "paper"})
    flipped = ChallengerReward(solver=Solver(), solver_prompt={"system": "s", "user": "{question}"}, m=4,
                               reward_options={"variant": "paper", "reward_sign": -1.0})
    r0, r1 = base(completions=texts), flipped(completions=texts)
    # p = 2/4 -> uncertainty 1 - 2|1/2 - 1/2| = 1; repetition 1 * |C|/B = 1/2 (B = 2); malformed -> 0
    assert r0 == [0.5, 0.0]
    assert r1 == [-x for x in r0]
