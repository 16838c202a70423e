"""GRPO stages under accelerate: the launch command line and the spec round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_bench.errors import UserError
from rzero_bench.training.launch import launch_command, main


def test_launch_command_shipped_config_gpus_and_prefix(tmp_path):
    spec = tmp_path / "spec.json"
    cmd = launch_command(spec, "accelerate/8gpu_zero2.yaml", gpus="0,1,2,3")
    assert Path(cmd[0]).name == "accelerate" and cmd[1:3] == ["launch", "--config_file"]
    assert Path(cmd[3]).is_file() and cmd[3].endswith("trainers/accelerate/8gpu_zero2.yaml")
    assert cmd[4:6] == ["--num_processes", "4"]
    assert cmd[-3:] == ["-m", "rzero_bench.training.launch", str(spec)]
    cmd = launch_command(spec, "accelerate/multinode.yaml", prefix="srun --nodes=2 --ntasks-per-node=1")
    assert cmd[:3] == ["srun", "--nodes=2", "--ntasks-per-node=1"] and "--num_processes" not in cmd
    with pytest.raises(UserError, match="accelerate config not found"):
        launch_command(spec, "accelerate/nope.yaml")


def test_launch_command_several_nodes_reads_each_nodes_rank(tmp_path):
    spec = tmp_path / "spec.json"
    cmd = launch_command(spec, "accelerate/multinode.yaml", gpus="0,1,2,3", nodes=2,
                         prefix="srun --nodes=2 --ntasks-per-node=1")
    assert cmd[:5] == ["srun", "--nodes=2", "--ntasks-per-node=1", "bash", "-c"]
    assert "accelerate launch --config_file" in cmd[5] or "/accelerate launch --config_file" in cmd[5]
    line = cmd[5]
    # 2 nodes x 4 GPUs; the rank is expanded by each node's shell, the address is the orchestrator's
    assert "--num_processes 8" in line and "--num_machines 2" in line
    assert '--machine_rank "${SLURM_NODEID:-${NODE_RANK:-0}}"' in line
    assert '--main_process_ip "$MASTER_ADDR"' in line
    assert line.endswith(f"-m rzero_bench.training.launch {spec}")


def test_launch_main_rejects_bad_usage(tmp_path, capsys):
    assert main([]) == 2
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"role": "referee", "settings": {}}))
    assert main([str(spec)]) == 2


@pytest.mark.slow
def test_launch_main_runs_a_solver_stage_from_its_spec(tmp_path, tiny_model_path):
    from rzero_bench.prompts import load_prompt
    from rzero_bench.store import atomic_write_jsonl

    ds = tmp_path / "ds.jsonl"
    atomic_write_jsonl(ds, [{"question": f"What is {i}+1?", "label": str(i + 1)} for i in range(4)])
    spec = {"role": "solver", "model_path": str(tiny_model_path), "out_dir": str(tmp_path / "solver"),
            "settings": {"lr": 1e-3, "beta": 0.0, "num_generations": 2, "prompts_per_step": 2, "max_steps": 2,
                         "max_completion_length": 8, "seed": 3},
            "solver_prompt": load_prompt("solver"), "reward_options": {"format_weight": 0.0, "kind": "math"},
            "dataset_path": str(ds), "stats_path": str(tmp_path / "stats.json")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main([str(tmp_path / "spec.json")]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["steps"] == 2 and stats["role"] == "solver"
    assert (tmp_path / "solver" / "config.json").is_file()
