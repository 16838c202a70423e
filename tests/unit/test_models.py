"""Model names: bare names of the reference models resolve to hub ids; the hub check is bounded."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rzero_bench.errors import UserError
from rzero_bench.models import KNOWN_MODELS, check_hub, is_small_model, model_shape, resolve_name

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"


@pytest.mark.parametrize("path", sorted(REFERENCE.glob("*.json")), ids=lambda p: p.stem)
def test_every_reference_model_name_resolves_to_its_hub_id(path):
    ref = json.loads(path.read_text())
    res = resolve_name(ref["base_model"])
    assert res.kind == "hub" and "/" in res.model
    assert res.note.startswith(f"model: {ref['base_model']} → {res.model}")
    if ref.get("model_id"):
        assert res.model == ref["model_id"]


@pytest.mark.parametrize(("spec", "hub_id"), [
    ("Qwen3-4B-Base", "Qwen/Qwen3-4B-Base"),
    ("qwen3-4b-base", "Qwen/Qwen3-4B-Base"),
    ("Qwen3-8B-Base", "Qwen/Qwen3-8B-Base"),
    ("OctoThinker-3B", "OctoThinker/OctoThinker-3B-Hybrid-Base"),
    ("OctoThinker-8B", "OctoThinker/OctoThinker-8B-Hybrid-Base"),
    ("Qwen/Qwen3-4B-Base", "Qwen/Qwen3-4B-Base"),  # a hub id is kept as given
    ("someone/some-model", "someone/some-model"),
])
def test_resolution(spec, hub_id):
    assert resolve_name(spec).model == hub_id


def test_unknown_bare_name_gets_did_you_mean():
    with pytest.raises(UserError, match=r"did you mean 'Qwen3-4B-Base' \(Qwen/Qwen3-4B-Base\)"):
        resolve_name("Qwen3-4B")
    with pytest.raises(UserError) as e:
        resolve_name("llama")
    assert "did you mean" not in str(e.value) and "known: Qwen3-4B-Base" in str(e.value)


def test_paths_and_cpu_specs(tmp_path):
    assert resolve_name("tiny:s").kind == "tiny" and resolve_name("micro:s@2").kind == "micro"
    with pytest.raises(UserError, match="expected tiny:<size>"):
        resolve_name("tiny:")
    with pytest.raises(UserError, match="model path not found"):
        resolve_name("./no/such/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        resolve_name(str(tmp_path / "empty"))


def _config(path: Path, hidden: int, layers: int, vocab: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({
        "hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": 3 * hidden,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab, "tie_word_embeddings": True,
        "max_position_embeddings": 2048}))
    return path


def test_small_local_models_suit_the_cpu_presets(tmp_path):
    small = resolve_name(str(_config(tmp_path / "small", 64, 2, 1000)))
    big = resolve_name(str(_config(tmp_path / "big", 2048, 24, 150000)))
    assert is_small_model(small) and not is_small_model(big)
    assert not is_small_model(resolve_name("Qwen3-4B-Base"))
    shape, source = model_shape(big)
    assert shape.max_position_embeddings == 2048 and source.endswith("config.json")


def test_known_shapes_give_the_published_parameter_counts():
    # Qwen3 model cards: 4.0B and 8.2B parameters; Llama-3.2-3B: 3.21B
    assert KNOWN_MODELS["qwen3-4b-base"].shape.params == pytest.approx(4.02e9, rel=0.01)
    assert KNOWN_MODELS["qwen3-8b-base"].shape.params == pytest.approx(8.19e9, rel=0.01)
    assert KNOWN_MODELS["octothinker-3b"].shape.params == pytest.approx(3.21e9, rel=0.01)


def test_hub_check_offline_uses_the_local_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    assert check_hub("Qwen/Qwen3-4B-Base").status == "uncached-offline"
    repo = tmp_path / "models--Qwen--Qwen3-4B-Base"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    _config(repo / "snapshots" / "abc123", 2560, 36, 151936)
    hc = check_hub("Qwen/Qwen3-4B-Base")
    assert hc.ok and hc.status == "cached"
    # the cached config.json wins over the table
    shape, source = model_shape(resolve_name("Qwen3-4B-Base"))
    assert shape.max_position_embeddings == 2048 and "snapshots" in source


class _Hub(BaseHTTPRequestHandler):
    delay = 0.0

    def do_GET(self):  # noqa: N802 - http.server's name
        time.sleep(self.delay)
        code = 200 if self.path.endswith("/Qwen/Qwen3-4B-Base") else 404
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as c

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield _Hub
    _Hub.delay = 0.0
    server.shutdown()


def test_hub_check_online_is_one_bounded_request(hub):
    assert check_hub("Qwen/Qwen3-4B-Base", timeout=2).status == "reachable"
    missing = check_hub("Qwen/Qwen3-4B-Bas", timeout=2)
    assert missing.status == "missing" and not missing.local and "HTTP 404" in missing.detail
    hub.delay = 5.0
    start = time.monotonic()
    slow = check_hub("Qwen/Qwen3-4B-Base", timeout=0.5)
    assert slow.status == "unreachable" and slow.local
    assert time.monotonic() - start < 2.5  # bounded: the timeout plus one second at most


@pytest.mark.parametrize("spec", ["tiny:xs", "tiny:s", "micro:s", "micro:m"])
def test_built_models_have_their_shape_before_the_build(spec):
    """tiny:/micro: shapes come from the size tables (the preflight prints a size, not 'unknown'), and
    equal the parameter count of the model the project builds (vocab: tiny 768, micro 512)."""
    from rzero_bench.micro.recipe import MICRO_SIZES
    from rzero_bench.training.tiny import count_params, make_model_config

    shape, source = model_shape(resolve_name(spec))
    kind, size = spec.split(":")
    assert shape is not None and source == f"the {kind} size table ({spec})"
    built = make_model_config(MICRO_SIZES[size] if kind == "micro" else size, 512 if kind == "micro" else 768)
    assert shape.params == count_params(built)
    assert model_shape(resolve_name(f"{kind}:nope")) == (None, f"unknown ({kind} size 'nope')")
    assert model_shape(resolve_name(f"{spec}@4"))[0] == shape  # a pretraining budget does not change the shape
    if kind == "micro":
        assert model_shape(resolve_name(f"{spec}@demo"))[0] == shape
        with pytest.raises(UserError, match="one of: demo"):
            resolve_name(f"{spec}@fast")
