"""Preflight: preset choice, the layout from the hardware, each failed check, and the CLI contract
(`rzero-bench run --model Qwen3-4B-Base` on a CPU machine exits 2 at once and writes nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rzero_bench import preflight as pf
from rzero_bench.config import load_config
from rzero_bench.errors import UserError
from rzero_bench.models import resolve_name
from rzero_bench.preflight import plan as pf_plan

DATA_DIR = Path(os.environ.get("RZERO_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"))
needs_data = pytest.mark.skipif(not (DATA_DIR / "bbeh").is_dir(), reason="needs RZERO_DATA_DIR with bbeh")
QWEN = resolve_name("Qwen3-4B-Base")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


# ------------------------------------------------------------------ preset choice
def test_a_real_model_without_preset_runs_the_paper_preset():
    assert pf.choose_preset(QWEN, preset=None, file_preset=None, has_file=False)[0] == "paper"
    assert pf.choose_preset(resolve_name("tiny:s"), preset=None, file_preset=None, has_file=False)[0] == "tiny"
    assert pf.choose_preset(None, preset=None, file_preset=None, has_file=False)[0] == "tiny"
    assert pf.choose_preset(QWEN, preset="official-code", file_preset=None, has_file=False)[0] == "official-code"
    assert pf.choose_preset(QWEN, preset=None, file_preset="official-code", has_file=True)[0] == "official-code"


@pytest.mark.parametrize("preset", ["tiny", "micro"])
def test_cpu_presets_with_a_real_model_are_refused_with_the_reason(preset):
    with pytest.raises(UserError) as e:
        pf.choose_preset(QWEN, preset=preset, file_preset=None, has_file=False)
    msg = str(e.value)
    assert f"the {preset} preset is for tiny:/micro: models" in msg and "--preset paper" in msg and "--force-preset" in msg
    assert pf.choose_preset(QWEN, preset=preset, file_preset=None, has_file=False, force=True)[0] == preset


# ------------------------------------------------------------------ layout from the hardware
@pytest.mark.parametrize(("gpus", "serve", "challenger", "solver", "accel"), [
    (1, "0", "0", "0", "accelerate/1gpu_zero2_offload.yaml"),
    (2, "1", "0", "0,1", "accelerate/8gpu_zero2.yaml"),
    (4, "2,3", "0,1", "0,1,2,3", "accelerate/8gpu_zero2.yaml"),
    (8, "4,5,6,7", "0,1,2,3", "0,1,2,3,4,5,6,7", "accelerate/8gpu_zero2.yaml"),  # the official layout
])
def test_layout_for_one_to_eight_gpus(gpus, serve, challenger, solver, accel):
    cfg = pf.derive_layout(load_config(preset="paper"), gpus)
    lay = cfg.layout
    assert (lay.serve_gpus, lay.challenger_gpus, lay.solver_gpus, lay.accelerate_config) == (serve, challenger, solver, accel)
    assert lay.sampling_gpus == ",".join(str(i) for i in range(gpus))  # sampling uses every GPU
    assert lay.gpus_per_node == gpus


def test_layout_several_nodes_and_user_keys_kept():
    cfg = pf.derive_layout(load_config(preset="paper", overrides=["layout.serve_gpus=6,7"]), 8, 2,
                           user_keys=["layout.serve_gpus"])
    lay = cfg.layout
    assert lay.serve_gpus == "6,7" and lay.nodes == 2
    assert lay.accelerate_config == "accelerate/multinode.yaml" and lay.launch_prefix.startswith("srun --nodes=2")
    assert load_config(preset="tiny") == pf.derive_layout(load_config(preset="tiny"), 8)  # not an auto layout


# ------------------------------------------------------------------ memory model
def test_memory_grows_without_gradient_checkpointing_and_shrinks_with_more_gpus():
    shape = QWEN.known.shape
    cfg = pf.derive_layout(load_config(preset="paper"), 8)
    on = pf.grpo_memory(cfg, "challenger", shape, 80.0)
    off_cfg = pf.derive_layout(load_config(preset="paper", overrides=["challenger.gradient_checkpointing=false"]), 8)
    off = pf.grpo_memory(off_cfg, "challenger", shape, 80.0)
    assert on.ok and not off.ok
    # 2 sequences of 512 + 4096 tokens x 36 layers x (4H + 5Hq + 2Hkv + 4I) values x 2 bytes without checkpointing
    per_layer = 4 * 2560 + 5 * 4096 + 2 * 1024 + 4 * 9728
    assert off.parts["activations"] == pytest.approx(2 * 4608 * 36 * per_layer * 2 / 2**30)  # 44.3 GiB
    # with it: each layer's input (H values) + one layer recomputed
    assert on.parts["activations"] == pytest.approx(2 * 4608 * (36 * 2560 + per_layer) * 2 / 2**30)  # 2.2 GiB
    # ZeRO-2 shards the 12 bytes/parameter of optimizer state over the 4 challenger GPUs: 4.02e9 x 12 / 4
    assert on.parts["optimizer"] == pytest.approx(4.02e9 * 12 / 4 / 2**30, rel=0.01)
    assert pf.grpo_memory(cfg, "solver", shape, 80.0).parts["optimizer"] == pytest.approx(on.parts["optimizer"] / 2)


# ------------------------------------------------------------------ each failed check
def _plan(overrides=(), *, gpus=8, memory=80.0, planned=True, data_dir=DATA_DIR, tasks="[gsm8k]", tmp_path=None):
    sets = [*overrides] + ([f"eval.tasks={tasks}"] if tasks else [])
    cfg = load_config(preset="paper", overrides=sets)
    hw = pf.Hardware(gpus, memory if gpus else None, planned=planned, source="test")
    cfg = pf.derive_layout(cfg, gpus, memory_gib=memory, shape=QWEN.known.shape)
    return pf.build_plan(cfg, res=QWEN, preset="paper", preset_why="test", hardware=hw, data_dir=data_dir,
                         run_dir=(tmp_path or Path("/tmp")) / "run")


def _failed(plan, name):
    return [c.detail for c in plan.failed if c.name == name]


def test_planned_machine_lists_what_only_it_can_tell():
    plan = _plan()
    assert not plan.failed
    there = {c.name for c in plan.checks if c.status == "there"}
    assert {"model", "disk"} <= there  # weights not cached here, free disk over there


def test_no_gpu_fails_with_how_to_run_on_cpu():
    plan = _plan(gpus=0, planned=False)
    (gpu,) = _failed(plan, "gpus")
    assert "none is visible" in gpu and "to run on CPU instead: `rzero-bench run`" in gpu
    assert _failed(plan, "model")  # on this machine an uncached model is a failure, not "check there"


def test_layout_needing_more_gpus_than_visible_fails():
    cfg = pf.derive_layout(load_config(preset="paper", overrides=["eval.tasks=[gsm8k]"]), 8)
    plan = pf.build_plan(cfg, res=QWEN, preset="paper", preset_why="t", hardware=pf.Hardware(4, 80.0, source="t"),
                         data_dir=DATA_DIR, run_dir=Path("/tmp/r"), hub_check=False)
    (gpu,) = _failed(plan, "gpus")
    assert "uses GPUs 0-7 but only 4 are visible" in gpu


def test_missing_packages_fail_here_and_are_checked_there(monkeypatch):
    real = pf_plan.importlib.util.find_spec
    monkeypatch.setattr(pf_plan.importlib.util, "find_spec", lambda n: None if n in ("vllm", "deepspeed") else real(n))
    here = _plan(planned=False)
    assert _failed(here, "vllm") and _failed(here, "deepspeed")
    assert "pip install 'rzero-bench[gpu]'" in _failed(here, "vllm")[0]
    planned = _plan()
    assert not _failed(planned, "vllm") and {"vllm", "deepspeed"} <= {c.name for c in planned.checks if c.status == "there"}


def test_memory_failure_names_the_stage_and_the_fix():
    plan = _plan(["challenger.gradient_checkpointing=false"])
    (mem,) = _failed(plan, "memory")
    assert mem.startswith("challenger GRPO needs ~113 GiB per GPU > 80 GiB") and "gradient_checkpointing=true" in mem


def test_small_gpus_fail_the_server_too():
    # 7.5 GiB of weights + 1.2 GiB of KV for one 8448-token sequence (the votes) > 0.9 x 9 GiB
    plan = _plan(memory=9.0)
    fails = _failed(plan, "memory")
    assert any(f.startswith("vllm serve:") for f in fails) and any("GRPO needs" in f for f in fails)


@needs_data
def test_explicit_max_model_len_too_short_names_the_task_and_item():
    plan = _plan(["layout.max_model_len=8192"], tasks="[gsm8k, bbeh]")
    lengths = _failed(plan, "length")
    assert any(f.startswith("bbeh: item spatial_reasoning/") for f in lengths)
    assert not any(f.startswith("gsm8k") for f in lengths)


@needs_data
def test_derived_max_model_len_covers_the_longest_request():
    plan = _plan(tasks="[gsm8k, bbeh]")
    bbeh = next(r for r in plan.lengths if r.what == "bbeh")
    assert plan.max_model_len >= bbeh.need and plan.max_model_len % 256 == 0
    assert plan.max_model_len <= QWEN.known.shape.max_position_embeddings


def test_disk_too_small_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(pf_plan.shutil, "disk_usage", lambda p: type("U", (), {"free": 10 * 2**30})())
    (disk,) = _failed(_plan(planned=False, tmp_path=tmp_path), "disk")
    assert "10 GiB free" in disk and "checkpoints need ~55 GiB" in disk  # (2 x 3 + 1) x 2 bytes x 4.02e9 x 1.05


# ------------------------------------------------------------------ the command
def _cli(args, tmp_path, timeout=60):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
           "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "RZERO_DATA_DIR": str(DATA_DIR)}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "rzero_bench.cli", "run", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=tmp_path)
    return proc, time.monotonic() - start


@needs_data
def test_run_real_model_on_a_cpu_machine_exits_2_at_once_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "D"
    proc, wall = _cli(["--model", "Qwen3-4B-Base", "--run-dir", str(run_dir)], tmp_path)
    err = proc.stderr
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert wall < 10 + 5  # the contract is 10 s; a loaded shared machine gets 5 s of slack
    assert "Qwen3-4B-Base → Qwen/Qwen3-4B-Base" in err and "preset: paper" in err
    assert "FAIL  gpus:" in err and "to run on CPU instead" in err
    assert err.strip().splitlines()[-1].startswith("error: ") and not run_dir.exists()


@needs_data
def test_dry_run_for_a_machine_you_do_not_have(tmp_path):
    proc, _ = _cli(["--model", "Qwen3-4B-Base", "--dry-run", "--gpus", "8", "--gpu-memory-gib", "80"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for needle in ("memory per GPU", "challenger GRPO (ZeRO-2, 4)", "lengths, tokens", "stages per iteration",
                   "32 optimizer update(s)", "dry run: nothing was written"):
        assert needle in proc.stderr
    assert not (tmp_path / "runs").exists()
    bad, _ = _cli(["--model", "Qwen3-4B-Base", "--dry-run", "--gpus", "8", "--gpu-memory-gib", "80",
                   "--set", "layout.max_model_len=8192"], tmp_path)
    assert bad.returncode == 2 and "FAIL  length: bbeh:" in bad.stderr


def test_run_tiny_preset_with_real_model_is_refused(tmp_path):
    proc, _ = _cli(["--model", "Qwen3-4B-Base", "--preset", "tiny", "--run-dir", str(tmp_path / "D")], tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "tiny preset is for tiny:/micro: models" in lines[0]
    assert not (tmp_path / "D").exists()
