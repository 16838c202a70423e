"""A much-reduced micro pretraining: it runs, is cached, is deterministic and loads with from_pretrained."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STEPS = {"phase1_steps": 24, "phase2_steps": 6, "eval_per_level": 1}


def test_reduced_pretraining_is_deterministic_cached_and_loadable(tmp_path: Path) -> None:
    from rzero_bench.micro.pretrain import META_FILE, pretrain_micro, read_meta

    calls: list[tuple[str, int, int]] = []
    a = pretrain_micro(
        "s", 0, home=tmp_path / "a", progress=lambda ph, s, n, loss: calls.append((ph, s, n)), **STEPS
    )
    assert a.parent == tmp_path / "a" / "models" and a.name.startswith("micro-s-s0-")
    assert ("phase1", 24, 24) in calls and ("phase2", 6, 6) in calls

    meta = read_meta(a)
    assert (
        meta["steps"] == 30
        and meta["tokens"] == 30 * meta["recipe"]["block_len"] * meta["recipe"]["batch_blocks"]
    )
    assert meta["phases"]["phase2"]["direct_fraction"] == 0.6
    assert 900_000 < meta["n_params"] < 1_200_000
    assert set(meta["eval"]["levels"]) == {"L1", "L2", "L3", "L4", "L5"}
    assert {"greedy", "maj@8", "mean@8", "n"} <= set(meta["eval"]["levels"]["L2"])

    # phase 1 is cached on its own, so a phase-2 variant reuses it (same tokenizer, no retraining)
    (phase1,) = (tmp_path / "a" / "models").glob("micro-phase1-s-s0-*")
    calls.clear()
    c = pretrain_micro("s", 0, home=tmp_path / "a", progress=lambda ph, s, n, loss: calls.append((ph, s, n)),
                       phase1_steps=24, phase2_steps=3, eval_per_level=0)  # fmt: skip
    assert c != a and not any(ph == "phase1" for ph, _, _ in calls)
    assert (c / "tokenizer.json").read_bytes() == (phase1 / "tokenizer.json").read_bytes()
    assert read_meta(c)["eval"]["levels"] == {}

    # cached: a second call with the same recipe returns at once without rebuilding
    stamp = (a / META_FILE).stat().st_mtime_ns
    t0 = time.perf_counter()
    assert pretrain_micro("s", 0, home=tmp_path / "a", **STEPS) == a
    assert time.perf_counter() - t0 < 30
    assert (a / META_FILE).stat().st_mtime_ns == stamp

    # deterministic: a fresh build of the same recipe has the same hash and identical weights
    b = pretrain_micro("s", 0, home=tmp_path / "b", **STEPS)
    assert b.name == a.name
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    # another seed is another model
    from rzero_bench.micro.pretrain import make_recipe, micro_model_dir

    assert micro_model_dir(make_recipe("s", 1, **STEPS), tmp_path / "a").name != a.name

    # loads with from_pretrained; digits are single tokens; the chat template is the pipeline's
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rzero_bench.backends.base import render_chat
    from rzero_bench.prompts import load_prompt, solver_messages

    tok = AutoTokenizer.from_pretrained(a)
    model = AutoModelForCausalLM.from_pretrained(a)
    assert tok.tokenize("1234567890") == list("1234567890")
    prompt, template = render_chat(tok, solver_messages(load_prompt("solver"), "What is 23+45?"))
    assert template == "model" and prompt.endswith("<|im_start|>assistant\n")
    assert model.config.vocab_size >= len(tok)
    assert sum(p.numel() for p in model.parameters()) == meta["n_params"]
