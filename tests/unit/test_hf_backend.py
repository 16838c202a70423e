"""hf backend on the tiny model: n samples, seeds, greedy, stop strings, finish reasons, lifetime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rzero_bench.backends.hf import HFGenerator
from rzero_bench.errors import BackendError, UserError
from rzero_bench.records import GenerationRequest, SamplingParams


def _req(text: str, *, id: str = "", **params: object) -> GenerationRequest:
    return GenerationRequest(
        messages=({"role": "user", "content": text},), params=SamplingParams(**params), id=id
    )


PROMPTS = ["What is 2 + 3?", "Solve for $x$: 3x + 5 = 20.", "Write one problem inside <question> tags."]


@pytest.fixture(scope="module")
def gen(tiny_model_path: Path) -> HFGenerator:
    g = HFGenerator(tiny_model_path, device="cpu", batch_size=32, threads=1)
    yield g
    g.close()


def test_n_samples_for_several_prompts(gen: HFGenerator) -> None:
    reqs = [_req(p, id=f"q{i}", n=4, temperature=1.0, max_tokens=24, seed=i) for i, p in enumerate(PROMPTS)]
    seen: list[int] = []
    out = gen.generate(reqs, progress=seen.append)
    assert sum(seen) == 3
    assert [g.id for g in out] == ["q0", "q1", "q2"]
    for g in out:
        assert len(g.texts) == len(g.finish_reasons) == len(g.completion_tokens) == 4
        assert len(set(g.texts)) > 1  # samples of one prompt differ
        assert g.prompt_tokens > 5
        for reason, n in zip(g.finish_reasons, g.completion_tokens, strict=True):
            assert reason in {"stop", "length"}
            assert 1 <= n <= 24
            assert (n == 24) == (reason == "length") or reason == "stop"
    assert gen.chat_template_name == "model"


def test_same_seed_same_texts_regardless_of_batch(gen: HFGenerator, tiny_model_path: Path) -> None:
    target = _req(PROMPTS[1], n=3, temperature=0.9, top_p=0.95, top_k=50, max_tokens=20, seed=7)
    alone = gen.generate([target])[0]
    others = [
        _req(p * k, n=2, temperature=0.9, top_p=0.95, top_k=50, max_tokens=20, seed=k)
        for k, p in enumerate(PROMPTS, 1)
    ]
    mixed = gen.generate([others[0], target, others[1], others[2]])[1]
    assert mixed.texts == alone.texts
    with HFGenerator(tiny_model_path, device="cpu", batch_size=1, threads=1) as small:
        assert small.generate([target])[0].texts == alone.texts
    other_seed = gen.generate(
        [_req(PROMPTS[1], n=3, temperature=0.9, top_p=0.95, top_k=50, max_tokens=20, seed=8)]
    )[0]
    assert other_seed.texts != alone.texts


def test_greedy_is_deterministic_and_copies_n(gen: HFGenerator) -> None:
    a = gen.generate([_req(PROMPTS[0], n=3, temperature=0.0, max_tokens=16, seed=1)])[0]
    b = gen.generate(
        [_req(PROMPTS[0], n=1, temperature=0.0, max_tokens=16, seed=99), _req(PROMPTS[2], max_tokens=16)]
    )[0]
    assert len(set(a.texts)) == 1
    assert a.texts[0] == b.texts[0]


def test_stop_strings_cut_and_stop_early(gen: HFGenerator) -> None:
    params = dict(n=4, temperature=1.0, max_tokens=32, seed=3)
    free = gen.generate([_req(PROMPTS[0], **params)])[0]
    text = free.texts[0]
    assert free.finish_reasons[0] == "length", "the free run should use all 32 tokens for this seed"
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    assert stop.strip()
    cut = gen.generate([_req(PROMPTS[0], **params, stop=(stop, "\u2603never"))])[0]
    assert cut.texts[0] == text[: text.find(stop)]
    assert cut.finish_reasons[0] == "stop"
    assert cut.completion_tokens[0] < free.completion_tokens[0]  # generation stopped early
    for full, free_reason, short, reason in zip(
        free.texts, free.finish_reasons, cut.texts, cut.finish_reasons, strict=True
    ):
        assert stop not in short
        if stop in full:
            assert (short, reason) == (full[: full.find(stop)], "stop")
        else:
            assert (short, reason) == (full, free_reason)


def test_eos_gives_stop(gen: HFGenerator) -> None:
    # temperature 3 over a near-uniform model: some of 32 samples of 64 tokens hit an eos token
    out = gen.generate([_req(PROMPTS[0], n=32, temperature=3.0, max_tokens=64, seed=0)])[0]
    stopped = [n for n, r in zip(out.completion_tokens, out.finish_reasons, strict=True) if r == "stop"]
    assert stopped and all(n < 64 for n in stopped)
    assert all(
        n == 64 for n, r in zip(out.completion_tokens, out.finish_reasons, strict=True) if r == "length"
    )


def test_close_is_idempotent_and_frees(tiny_model_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    with HFGenerator(tiny_model_path, device="cpu", threads=before + 1) as g:
        assert g.generate([]) == []
        assert g.generate([_req("hi", max_tokens=4)])[0].completion_tokens[0] <= 4
        assert torch.get_num_threads() == before  # restored after generating
    assert g.closed and g.model is None and g.tokenizer is None
    g.close()
    with pytest.raises(BackendError):
        g.generate([_req("hi")])


def test_missing_models_are_one_line_user_errors(tmp_path: Path, hf_offline: None) -> None:
    with pytest.raises(UserError, match="hub is offline") as e1:
        HFGenerator("nobody/no-such-model-xyz", device="cpu")
    assert "nobody/no-such-model-xyz" in str(e1.value) and "\n" not in str(e1.value)
    with pytest.raises(UserError, match="no config.json"):
        HFGenerator(tmp_path, device="cpu")
    with pytest.raises(UserError, match="does not exist"):
        HFGenerator(str(tmp_path / "missing" / "ckpt"), device="cpu")
    with pytest.raises(UserError, match="dtype"):
        HFGenerator(tmp_path, device="cpu", dtype="int3")


GREEDY_PROMPTS = [
    *PROMPTS,
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many?",
    "x",
    "Compute \\frac{3}{4} + \\frac{1}{8} and put the result in \\boxed{}.",
]


def _transformers_greedy(
    g: HFGenerator, prompts: list[str], max_tokens: int, batched: bool
) -> list[list[int]]:
    """Greedy completions (token ids, eos included) from transformers' own ``model.generate``."""
    import torch

    from rzero_bench.backends.base import render_chat

    encoded = [
        g.tokenizer(render_chat(g.tokenizer, [{"role": "user", "content": p}])[0], add_special_tokens=False)[
            "input_ids"
        ]
        for p in prompts
    ]
    groups = [encoded] if batched else [[e] for e in encoded]
    eos = set(g.eos_ids)
    out: list[list[int]] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the generator does (threads=1): fast on a shared CPU
    try:
        results = []
        for group in groups:
            enc = g.tokenizer.pad({"input_ids": group}, padding=True, return_tensors="pt")  # left padding
            with torch.inference_mode():
                ids = g.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False)
            results.append((enc, ids))
    finally:
        torch.set_num_threads(threads)
    for enc, ids in results:
        for row in ids[:, enc["input_ids"].shape[1] :].tolist():
            end = next((t + 1 for t, tok in enumerate(row) if tok in eos), len(row))
            out.append(row[:end])
    return out


@pytest.mark.parametrize("size", ["xs", "s"])
def test_greedy_matches_transformers_generate_token_for_token(
    size: str, tiny_model_path: Path, tiny_model_path_s: Path
) -> None:
    path = tiny_model_path if size == "xs" else tiny_model_path_s
    max_tokens = 40
    with HFGenerator(path, device="cpu", batch_size=32, threads=1) as g:
        alone = _transformers_greedy(g, GREEDY_PROMPTS, max_tokens, batched=False)
        batched = _transformers_greedy(g, GREEDY_PROMPTS, max_tokens, batched=True)
        assert alone == batched  # transformers itself is padding-independent on these prompts
        eos = set(g.eos_ids)
        for batch_size in (32, 2):  # one batch; and rows refilled into a running batch
            g.batch_size = batch_size
            seen: list[list[int]] = []
            finish = g._finish

            def spy(
                content: list[int],
                length: int,
                reason: str,
                stops: list[str],
                seen: list[list[int]] = seen,
                finish: Any = finish,
            ) -> tuple[str, str, int]:
                seen.append(list(content))
                return finish(content, length, reason, stops)

            g._finish = spy  # type: ignore[method-assign]
            try:
                out = g.generate(
                    [_req(p, id=str(i), max_tokens=max_tokens) for i, p in enumerate(GREEDY_PROMPTS)]
                )
            finally:
                del g._finish
            # every row's generated ids (eos cut off) are exactly transformers' ids, and each request
            # reports the text, token count and finish reason of its own reference
            refs = [[t for t in ref if t not in eos] for ref in alone]
            assert sorted(seen) == sorted(refs), batch_size
            for i, ref in enumerate(alone):
                assert out[i].texts[0] == g.tokenizer.decode(refs[i], skip_special_tokens=True), (
                    batch_size,
                    i,
                )
                assert out[i].completion_tokens[0] == len(ref), (batch_size, i)
                assert out[i].finish_reasons[0] == ("stop" if ref[-1] in eos else "length"), (batch_size, i)


def test_prompt_longer_than_the_context_loses_its_beginning(tiny_model_path: Path) -> None:
    """A prompt that does not fit next to its completion in the model's positions is cut from the
    left (lm-eval's hf convention), counted in ``prompt_cut``, and generates exactly what the kept
    tail alone generates; a prompt that fits is untouched."""
    g = HFGenerator(tiny_model_path, device="cpu", batch_size=8, threads=1)
    try:
        ctx = g.context_length
        assert ctx is not None and ctx >= 64
        long_text = " ".join(f"{i} plus {i}" for i in range(ctx))  # far more tokens than ctx
        short = g.generate([_req("What is 2 + 3?", max_tokens=8)])[0]
        assert short.prompt_cut == 0
        out = g.generate([_req(long_text, max_tokens=16, id="long")])[0]
        assert out.prompt_cut > 0 and out.prompt_tokens == ctx - 16
        # the same tokens, kept by hand, give the same greedy completion from transformers' generate
        import torch

        from rzero_bench.backends.base import render_chat

        prompt, _ = render_chat(g.tokenizer, [{"role": "user", "content": long_text}])
        ids = list(g.tokenizer(prompt, add_special_tokens=g.chat_template_name != "model")["input_ids"])
        assert len(ids) == out.prompt_cut + out.prompt_tokens
        with torch.inference_mode():
            ref = g.model.generate(torch.tensor([ids[-(ctx - 16):]]), max_new_tokens=16, do_sample=False)
        assert g.tokenizer.decode(ref[0, ctx - 16:], skip_special_tokens=True) == out.texts[0]
    finally:
        g.close()
