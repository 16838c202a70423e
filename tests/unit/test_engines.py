"""Serving engines: command templates, the client's fan-out for engines without ``n``, and the
served backend's process lifetime (pidfiles, reaping, death of the orchestrator)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.backends import make_generator  # noqa: E402
from rzero_bench.backends.engines import ENGINES, format_command, get_engine, placeholders  # noqa: E402
from rzero_bench.backends.openai import OpenAIGenerator, sample_seed  # noqa: E402
from rzero_bench.backends.served import _LIVE, process_alive, reap_orphans, stop_all  # noqa: E402
from rzero_bench.errors import BackendError, UserError  # noqa: E402
from rzero_bench.records import GenerationRequest, SamplingParams  # noqa: E402
from tests.fixtures.openai_server import chat_reply, serve  # noqa: E402

FAKE = ROOT / "tests" / "fixtures" / "fake_vllm_serve.py"
TRANSFORMERS_CMD = f"{sys.executable} {FAKE} --engine transformers {{model}} --port {{port}}"


def req(text: str = "q", **params: object) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},), params=SamplingParams(**params))  # type: ignore[arg-type]


def wait_gone(pid: int, limit: float = 20.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


# ------------------------------------------------------------------ templates
def test_every_engine_template_has_model_and_port() -> None:
    for engine in ENGINES.values():
        assert {"model", "port"} <= placeholders(engine.command), engine.name
    assert get_engine(" Transformers ").name == "transformers"
    with pytest.raises(UserError, match="known: vllm, transformers"):
        get_engine("sglang")


def test_format_command_keeps_paths_whole_and_drops_unset_options() -> None:
    argv = format_command(ENGINES["vllm"].command, model="/runs/my run/iter_1/solver", port=8001, name="solver",
                          data_parallel_size=4, max_model_len=None, gpu_memory_utilization=0.9)
    assert argv[:3] == ["vllm", "serve", "/runs/my run/iter_1/solver"]
    assert "--max-model-len" not in argv
    assert argv[argv.index("--data-parallel-size") + 1] == "4"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.9"
    with pytest.raises(UserError, match=r"no value for \{gpus\}"):
        format_command("serve {model} --port {port} --gpus {gpus}", model="m", port=1)


# ------------------------------------------------------------------ client fan-out
def test_sample_seeds_of_neighbouring_requests_never_collide() -> None:
    seeds = {(s, j): sample_seed(s, j) for s in range(1000, 1064) for j in range(8)}
    assert len(set(seeds.values())) == len(seeds)  # seed + j would repeat 7 of every 8
    assert all(0 <= v < 2**31 for v in seeds.values()) and sample_seed(5, 0) == 5


def test_engine_without_n_gets_one_request_per_sample_with_distinct_seeds() -> None:
    def handler(body):
        return 200, chat_reply([f"seed={body.get('seed')} n={'n' in body}"])

    ticks: list[int] = []
    with serve(handler) as server, OpenAIGenerator("m", base_url=server.base_url, supports_n=False,
                                                   concurrency=3, api_key_env="") as g:
        out = g.generate([req("a", n=3, seed=100), req("b", n=1, seed=7), req("c", n=2, seed=None)],
                         progress=ticks.append)
    assert len(server.posts) == 6  # 3 + 1 + 2 requests, never an `n` field
    assert out[0].texts == tuple(f"seed={sample_seed(100, j)} n=False" for j in range(3))
    assert out[1].texts == ("seed=7 n=False",)  # sample 0 keeps the request's seed
    assert out[2].texts == ("seed=None n=False", "seed=None n=False")
    assert len(out[0].completion_tokens) == len(out[0].finish_reasons) == 3
    assert ticks == [1, 1, 1]  # once per request, not per sample


def test_sampling_switch_and_top_k_ride_in_generation_config_when_the_engine_wants_it() -> None:
    with serve() as server, OpenAIGenerator("m", base_url=server.base_url, top_k_mode="generation_config",
                                            api_key_env="") as g:
        g.generate([req(top_k=40, temperature=1.0)])
        g.generate([req(temperature=1.0), req(temperature=0.0)])
    body = server.posts[0].body
    assert "top_k" not in body
    assert json.loads(body["generation_config"]) == {"do_sample": True, "top_k": 40}
    # without do_sample transformers serve decodes greedily whatever the temperature
    configs = sorted(json.loads(p.body["generation_config"])["do_sample"] for p in server.posts[1:])
    assert configs == [False, True]


# ------------------------------------------------------------------ served lifetime
def test_transformers_engine_ready_on_health_pinned_name_and_fan_out(tmp_path: Path) -> None:
    ckpt = tmp_path / "iter_1" / "solver"
    pid_dir = tmp_path / ".servers"
    with make_generator("served", str(ckpt), engine="transformers", command=TRANSFORMERS_CMD, startup_timeout=60,
                        pid_dir=pid_dir, log_path=tmp_path / "server.log") as gen:
        pid = gen.pid
        assert gen.served_name == str(ckpt)  # the server only answers to the path it was given
        record = json.loads((pid_dir / f"{pid}.json").read_text())
        assert record["pid"] == pid and record["engine"] == "transformers" and record["start_time"]
        out = gen.generate([req(n=3, seed=40, top_k=5, temperature=1.0)])
        assert out[0].texts == tuple(f"served solver seed {sample_seed(40, j)} sample 0: \\boxed{{0}}" for j in range(3))
        assert gen.info["ready_s"] > 0
    assert gen.info["stopped"] and gen.info["exit_code"] is not None
    assert not process_alive(pid)
    assert not list(pid_dir.glob("*.json"))  # pidfile removed with the server


def test_reap_orphans_stops_a_server_left_behind(tmp_path: Path) -> None:
    pid_dir = tmp_path / ".servers"
    gen = make_generator("served", str(tmp_path / "m"), engine="transformers", command=TRANSFORMERS_CMD,
                         startup_timeout=60, pid_dir=pid_dir)
    pid = gen.pid
    # forget it, as a SIGKILLed orchestrator would: no close(), the pidfile stays
    _LIVE.discard(gen)
    gen._proc = None
    gen._pidfile = None
    assert process_alive(pid)
    (pid_dir / "99999999.json").write_text(json.dumps({"pid": 99999999, "start_time": "1"}))  # long gone
    assert reap_orphans(pid_dir, timeout=10) == [pid]
    assert wait_gone(pid, 10)
    assert not list(pid_dir.glob("*.json"))
    assert reap_orphans(pid_dir) == []


def test_stop_all_stops_every_live_server(tmp_path: Path) -> None:
    gens = [make_generator("served", str(tmp_path / f"m{i}"), engine="transformers", command=TRANSFORMERS_CMD,
                           startup_timeout=60) for i in range(2)]
    pids = [g.pid for g in gens]
    assert stop_all() == 2
    assert all(not process_alive(p) for p in pids)
    assert stop_all() == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_with_a_sigkilled_orchestrator(tmp_path: Path) -> None:
    script = tmp_path / "orchestrator.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from rzero_bench.backends import make_generator
        gen = make_generator("served", {str(tmp_path / "m")!r}, engine="transformers",
                             command={TRANSFORMERS_CMD!r}, startup_timeout=60, pid_dir={str(tmp_path / "pids")!r})
        print(gen.pid, flush=True)
        time.sleep(600)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(proc.stdout.readline())  # type: ignore[union-attr]
        assert process_alive(server_pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_gone(server_pid), "the server outlived its SIGKILLed orchestrator"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert reap_orphans(tmp_path / "pids") == []  # nothing left to reap; the stale pidfile is cleared


# ------------------------------------------------------------------ the paper-cpu preset
def test_paper_cpu_preset_is_the_gpu_layout_on_cpu() -> None:
    from rzero_bench.config import load_config
    from rzero_bench.preflight import needs_gpu

    cfg = load_config(None, preset="paper-cpu", overrides=[])
    lay = cfg.layout
    assert (lay.generation_backend, lay.serve_engine, lay.serve_command) == ("served", "transformers", None)
    assert lay.accelerate_config == "accelerate/cpu_2proc.yaml" and cfg.model.startswith("micro:")
    assert not needs_gpu(cfg)  # no CUDA, no vllm: the CPU form of the layout
    gpu = load_config(None, preset="paper-cpu", overrides=["layout.serve_engine=vllm"])
    assert needs_gpu(gpu)
    with pytest.raises(Exception, match="serve_engine"):
        load_config(None, preset="paper-cpu", overrides=["layout.serve_engine=sglang"])


def test_a_port_taken_before_the_server_binds_it_is_retried_on_another(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import rzero_bench.backends.served as served

    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)  # someone else's server on the port we are about to pick
    taken = squatter.getsockname()[1]
    ports = iter([taken, served.free_port()])
    monkeypatch.setattr(served, "free_port", lambda: next(ports))
    try:
        with make_generator("served", str(tmp_path / "m"), engine="transformers", command=TRANSFORMERS_CMD,
                            startup_timeout=60, log_path=tmp_path / "server.log") as gen:
            assert gen.port != taken
            assert gen.generate([req(n=1, seed=3)])[0].texts == ("served m seed 3 sample 0: \\boxed{0}",)
        assert "address already in use" in (tmp_path / "server.log").read_text().lower()
        # a port the caller chose is not swapped for another: the failure is reported
        with pytest.raises(BackendError, match="exited with code"):
            make_generator("served", str(tmp_path / "m"), engine="transformers", command=TRANSFORMERS_CMD,
                           startup_timeout=60, port=taken)
    finally:
        squatter.close()
