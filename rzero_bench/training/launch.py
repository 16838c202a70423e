"""Entry point for a GRPO stage run by ``accelerate launch`` (several GPUs or nodes).

The pipeline stays a single orchestrating process. When the layout names an accelerate config, a
GRPO stage writes a JSON spec and runs::

    accelerate launch --config_file <layout.accelerate_config> -m rzero_bench.training.launch <spec.json>

Every rank builds the same trainer; accelerate/DeepSpeed shard the work. The challenger's reward
reaches the solver through the ``openai`` backend (a ``vllm serve`` on other GPUs), so no rank
loads a second model. Rank 0 writes the stage statistics to ``spec["stats_path"]``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rzero_bench.backends.served import die_with_parent, stop_group
from rzero_bench.errors import RZeroError, TrainingError, UserError
from rzero_bench.resources import shipped_dir
from rzero_bench.store import atomic_write_json, read_json, read_jsonl


def _config_path(accelerate_config: str) -> Path:
    cfg = Path(accelerate_config)
    if cfg.is_file():
        return cfg
    shipped = shipped_dir("trainers") / accelerate_config
    if not shipped.is_file():
        raise UserError(f"accelerate config not found: {accelerate_config} (shipped: trainers/accelerate/*.yaml)")
    return shipped


def accelerate_executable() -> str:
    """``accelerate`` on PATH, else the one installed beside this Python (an unactivated venv)."""
    found = shutil.which("accelerate")
    if found:
        return "accelerate"
    beside = Path(sys.executable).with_name("accelerate")
    return str(beside) if beside.is_file() else "accelerate"


def launch_command(spec_path: Path, accelerate_config: str, *, gpus: str | None = None,
                   prefix: str | None = None, nodes: int = 1, main_ip: str | None = None,
                   main_port: int = 29500) -> list[str]:
    """The command line that runs one GRPO stage under accelerate.

    ``gpus`` (a CUDA_VISIBLE_DEVICES list, the same on every node) also sets ``--num_processes``
    (GPUs x ``nodes``); ``prefix`` (e.g. an ``srun`` invocation) starts the launcher on every node of
    a multi-node job. With ``nodes`` > 1 the launcher runs through ``bash -c`` so that each node
    reads its own rank from its environment (``SLURM_NODEID``, else ``NODE_RANK``, else 0) and all
    meet at ``main_ip:main_port`` (default ``$MASTER_ADDR``, which :func:`run_launched` sets to
    this host).
    """
    cmd = [accelerate_executable(), "launch", "--config_file", str(_config_path(accelerate_config))]
    n_gpus = len([g for g in gpus.split(",") if g.strip()]) if gpus else 0
    if n_gpus:
        cmd += ["--num_processes", str(n_gpus * max(1, nodes))]
    cmd += ["-m", "rzero_bench.training.launch", str(spec_path)]
    if nodes > 1:
        ip = shlex.quote(main_ip) if main_ip else '"$MASTER_ADDR"'
        rank = '"${SLURM_NODEID:-${NODE_RANK:-0}}"'
        head = shlex.join(cmd[:4])
        tail = shlex.join(cmd[4:])
        line = (f"{head} --num_machines {int(nodes)} --machine_rank {rank} --main_process_ip {ip} "
                f"--main_process_port {int(main_port)} {tail}")
        cmd = ["bash", "-c", line]
    return (shlex.split(prefix) if prefix else []) + cmd


def run_launched(
    spec: dict[str, Any],
    spec_path: Path,
    accelerate_config: str,
    *,
    gpus: str | None = None,
    prefix: str | None = None,
    nodes: int = 1,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Write ``spec``, run the stage under accelerate, return rank 0's statistics.

    With ``spec["progress_path"]`` set, rank 0 appends its progress there (``{"event": "step",
    "step", "total", "logs"}`` per trainer log, ``{"event": "sampling", "done", "total"}`` while the
    challenger's reward samples the solver) and ``on_event`` receives each line as it arrives."""
    atomic_write_json(spec_path, spec)
    cmd = launch_command(spec_path, accelerate_config, gpus=gpus, prefix=prefix, nodes=nodes)
    env = dict(os.environ)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    if nodes > 1:
        env.setdefault("MASTER_ADDR", socket.gethostname())
    events = Path(spec["progress_path"]) if spec.get("progress_path") else None
    if events is not None:
        events.unlink(missing_ok=True)
    errors: list[str] = []

    def follow(event: dict[str, Any]) -> None:
        if event.get("event") == "error":
            errors.append(str(event.get("message", "")))
        if on_event is not None:
            on_event(event)

    try:
        code = run_following(cmd, env, events, follow)
    except FileNotFoundError:
        raise UserError(f"cannot run {cmd[0]!r}: is accelerate installed and on PATH?") from None
    if code != 0:
        reason = f": {errors[-1]}" if errors else ""
        raise TrainingError(f"{spec['role']} GRPO under accelerate failed (exit {code}){reason}; "
                            f"command: {shlex.join(cmd)}")
    return dict(read_json(spec["stats_path"]))


def run_following(cmd: list[str], env: dict[str, str], events: Path | None,
                  on_event: Callable[[dict[str, Any]], None] | None, *, poll: float = 0.5,
                  stop_timeout: float = 30.0) -> int:
    """Run ``cmd`` in its own process group and return its exit code; meanwhile hand every new JSON
    line of ``events`` (the ranks' progress file) to ``on_event``. Any exception here (Ctrl-C, the
    orchestrator's SIGTERM turned into SystemExit, a failing ``on_event``) stops the whole group:
    SIGTERM, SIGKILL after ``stop_timeout`` s. On Linux the launcher also dies with the orchestrator."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
    offset = 0
    try:
        while True:
            code = proc.poll()
            if events is not None and on_event is not None:
                offset = _follow(events, offset, on_event)
            if code is not None:
                return int(code)
            time.sleep(poll)
    except BaseException:
        def wait(limit: float | None) -> bool:
            try:
                proc.wait(timeout=limit)
                return True
            except subprocess.TimeoutExpired:
                return False

        stop_group(proc.pid, wait, stop_timeout)
        raise


def _follow(path: Path, offset: int, on_event: Callable[[dict[str, Any]], None]) -> int:
    """Hand the complete lines of ``path`` after byte ``offset`` to ``on_event``; the new offset."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return offset
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
    for line in data[:end].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            on_event(event)
    return offset + end


def progress_writer(path: str | None) -> Callable[[dict[str, Any]], None] | None:
    """Rank 0's event sink: appends one JSON line per event to ``path`` (None on other ranks)."""
    if not path or int(os.environ.get("RANK", "0")) != 0:
        return None

    def write(event: dict[str, Any]) -> None:
        line = json.dumps({**event, "time": time.time()}, default=str) + "\n"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)

    return write


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m rzero_bench.training.launch SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    emit = progress_writer(spec.get("progress_path"))
    try:
        return _run_spec(spec, emit)
    except RZeroError as e:  # one line for the user; rank 0 also hands it to the orchestrator
        if emit is not None:
            emit({"event": "error", "message": str(e)})
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run_spec(spec: dict[str, Any], emit: Callable[[dict[str, Any]], None] | None) -> int:
    """Train the role of ``spec`` on this rank; rank 0 writes the statistics."""
    from rzero_bench.training.grpo import GRPOSettings, train_challenger, train_solver

    settings = GRPOSettings.from_dict(spec["settings"])
    progress = sampling = None
    if emit is not None:
        def progress(step: int, total: int, logs: dict[str, Any]) -> None:
            emit({"event": "step", "step": step, "total": total, "logs": logs})

        def sampling(done: int, total: int) -> None:
            emit({"event": "sampling", "done": done, "total": total})

    if spec["role"] == "challenger":
        from rzero_bench.backends import make_generator

        sb = spec["solver_backend"]
        with make_generator(sb["backend"], sb["model"], **sb.get("options", {})) as solver:
            stats = train_challenger(
                model_path=spec["model_path"],
                out_dir=spec["out_dir"],
                settings=settings,
                solver=solver,
                solver_prompt=spec["solver_prompt"],
                challenger_prompt=spec["challenger_prompt"],
                m=spec["m"],
                reward_options=spec["reward_options"],
                log_path=spec["log_path"],
                progress=progress,
                sampling_progress=sampling,
            )
    elif spec["role"] == "solver":
        stats = train_solver(
            model_path=spec["model_path"],
            out_dir=spec["out_dir"],
            settings=settings,
            dataset=read_jsonl(spec["dataset_path"]),
            solver_prompt=spec["solver_prompt"],
            reward_options=spec["reward_options"],
            progress=progress,
        )
    else:
        print(f"unknown role {spec['role']!r}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        atomic_write_json(spec["stats_path"], stats.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
