"""Tiny offline model: deterministic build, parameter budgets, loadable with Auto classes, chat template."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rzero_bench.errors import UserError
from rzero_bench.store import sha256_file
from rzero_bench.training import tiny


def _file_hashes(path: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(path.iterdir()) if p.is_file()}


def test_rzero_home_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RZERO_HOME", str(tmp_path))
    assert tiny.rzero_home() == tmp_path
    monkeypatch.delenv("RZERO_HOME")
    assert tiny.rzero_home() == Path.home() / ".cache" / "rzero-bench"


def test_rebuild_is_byte_identical(tmp_path: Path, tiny_model_path: Path) -> None:
    a = tiny.build_tiny("xs", home=tmp_path / "a")
    b = tiny.build_tiny("xs", home=tmp_path / "b")
    assert a.name == b.name == tiny_model_path.name
    assert a.name.startswith("tiny-xs-")
    ha, hb = _file_hashes(a), _file_hashes(b)
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"} <= set(ha)
    assert ha == hb
    assert ha == _file_hashes(tiny_model_path)
    # cached: a second call returns the same directory without rebuilding
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    assert tiny.build_tiny("xs", home=tmp_path / "a") == a
    assert (a / "model.safetensors").stat().st_mtime_ns == mtime
    assert not [p for p in (tmp_path / "a" / "models").iterdir() if p.name.startswith(".")]


def test_build_cached_loser_keeps_winner(tmp_path: Path) -> None:
    target = tmp_path / "models" / "thing"

    def winner(tmp: Path) -> None:
        (tmp / "f").write_text("first")

    def racing(tmp: Path) -> None:  # another process finishes first while we build
        (tmp / "f").write_text("second")
        tiny.build_cached(target, winner)

    assert tiny.build_cached(target, racing) == target
    assert (target / "f").read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["thing"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0o700


@pytest.mark.parametrize("size", ["xs", "s", "m"])
def test_param_counts_within_budget(size: str) -> None:
    config = tiny.make_model_config(size, 768)
    n = tiny.count_params(config)
    target = tiny.SIZES[size].target_params
    assert 0.7 * target <= n <= 1.3 * target, (size, n)


def test_built_models_load_with_auto_classes(tiny_model_path: Path, tiny_model_path_s: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for path, size in [(tiny_model_path, "xs"), (tiny_model_path_s, "s")]:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        assert type(model).__name__ == "Qwen3ForCausalLM"
        n = sum(p.numel() for p in model.parameters())
        target = tiny.SIZES[size].target_params
        assert 0.7 * target <= n <= 1.3 * target, (size, n)
        assert model.config.tie_word_embeddings
        assert len(tok) <= model.config.vocab_size
        assert 300 <= len(tok) <= 2048
        assert tok.eos_token == tiny.IM_END and tok.pad_token == tiny.PAD_TOKEN
        assert tok.eos_token_id != tok.pad_token_id


def test_tokenizer_splits_digits_and_round_trips(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    text = "Compute 12345 + 678: <question>x</question> \\boxed{\\frac{1}{2}} é ∑"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    pieces = tok.convert_ids_to_tokens(tok("12345", add_special_tokens=False)["input_ids"])
    assert pieces == ["1", "2", "3", "4", "5"]
    assert len(tok("\\boxed{", add_special_tokens=False)["input_ids"]) <= 3


def test_chat_template_renders_roles(tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    from rzero_bench.backends.base import render_chat

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "\\boxed{4}"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n\\boxed{4}<|im_end|>\n"
    )
    prompt, name = render_chat(tok, messages[:2])
    assert name == "model"
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids.count(tok.convert_tokens_to_ids(tiny.IM_START)) == 3


def test_generic_pieces_for_other_builders() -> None:
    tok = tiny.build_tokenizer(["1 + 2 = 3", "12 * 3 = 36"] * 50, 300, chat_template=None)
    assert 256 < len(tok) <= 300
    assert tok.chat_template is None
    config = tiny.make_model_config("xs", tiny.padded_vocab_size(len(tok)), eos_token_id=2, pad_token_id=0)
    assert config.vocab_size % 64 == 0
    m1, m2 = tiny.init_model(config, seed=3), tiny.init_model(config, seed=3)
    assert all((a == b).all() for a, b in zip(m1.parameters(), m2.parameters(), strict=True))
    assert tiny.recipe_hash({"a": 1}) == tiny.recipe_hash({"a": 1}) != tiny.recipe_hash({"a": 2})


def test_unknown_size_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="valid sizes: xs, s, m"):
        tiny.build_tiny("xl", home=tmp_path)
