"""perf/gpu_smoke.py: its settings and estimates (fast), and one CPU run of the script (slow)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "perf" / "gpu_smoke.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_smoke", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_smoke"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_smoke_uses_the_paper_settings_and_the_in_process_estimate():
    smoke = _module()
    args = argparse.Namespace(prompts=4, completion_tokens=4096)
    cfg, settings = smoke._settings("challenger", args)
    assert settings.gradient_checkpointing and settings.micro_batch_per_device == 2
    assert (settings.epsilon_high, settings.weight_decay) == (0.3, 0.01) and settings.total_updates == 1
    shape = smoke._shape("Qwen3-0.6B-Base")
    est, parts = smoke._estimate(cfg, "challenger", shape, 140.0, 234)
    n = shape.params
    # in process, no DeepSpeed: fp32 weights, grads, Adam moments (16 bytes/parameter) + an fp32 reference
    assert parts["weights"] + parts["grads"] + parts["optimizer"] == pytest.approx(16 * n / 2**30)
    assert parts["reference"] == pytest.approx(4 * n / 2**30)
    assert "vllm" not in parts and "other" not in parts and est == pytest.approx(sum(parts.values()))


@pytest.mark.slow
def test_smoke_script_runs_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny-shape", "--prompts", "2",
                           "--completion-tokens", "4"], capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.strip().splitlines()[-2:]
    assert table[0].startswith("tiny") and " challenger " in table[0] and " solver " in table[1]
