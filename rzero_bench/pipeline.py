"""The R-Zero co-evolution loop (arXiv 2508.05004, section 3): the driver that runs the stages.

Iteration k starts from challenger_{k-1} and solver_{k-1} (both the base model at k = 1) and runs
the stages of :data:`rzero_bench.stages.STAGES` in order, one module each under
``rzero_bench/stages/``:

1. ``challenger``  GRPO on the challenger; reward = uncertainty of solver_{k-1} on each generated
   question (m samples, majority agreement p̂) minus the BLEU-cluster repetition penalty, gated on format.
2. ``questions``   N candidate questions sampled from challenger_k.
3. ``votes``       solver_{k-1} answers each question m times; the majority answer is the pseudo-label.
4. ``filter``      keep questions whose p̂ lies in the informative band; every drop is counted.
5. ``solver``      GRPO on solver_{k-1} against the pseudo-labels → solver_k.
6. ``label_acc``   pseudo-label accuracy against an oracle (only when the config names one).
7. ``eval``        solver_k on the benchmark suite → ``results/iter_k``. The base model is ``iter_0``.

This module holds what surrounds them: the run lock, the manifest (``manifest.json``, via
:class:`rzero_bench.store.RunStore`) and resume. A stage is marked done only after its function
returned and its outputs were written atomically, so a killed run resumes at the first unfinished
stage and never reruns a finished one; a finished run extended with more iterations runs only the
new ones.

``stop_on_collapse`` (``run --stop-on-collapse``) checks after each iteration's eval the collapse
alarm of :mod:`rzero_bench.report.collapse` (dev score below the best iteration's by more than its
paired CI, or kept pseudo-label accuracy under ``eval.collapse_label_floor``) and stops the loop
there; the manifest records ``stopped`` with the iteration and the reasons.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rzero_bench.backends.served import reap_orphans
from rzero_bench.config import RunConfig, config_hash
from rzero_bench.selfconsistency import self_consistency
from rzero_bench.stages import STAGES, StageFn
from rzero_bench.stages._context import (
    IterPaths,
    StageContext,
    check_model_spec,
    resolve_model,
    role_settings,
    stage_seed,
)
from rzero_bench.stages.challenger import reward_options
from rzero_bench.store import RunLock

# Older import paths (``from rzero_bench.pipeline import stage_seed`` etc.) keep working.
__all__ = ["STAGES", "IterPaths", "Pipeline", "StageContext", "check_model_spec", "print_summary", "resolve_model",
           "reward_options", "role_settings", "run_command", "self_consistency", "stage_seed"]


class Pipeline:
    """Runs (or resumes) the configured number of iterations in one run directory."""

    def __init__(self, cfg: RunConfig, run_dir: Path, *, data_dir: Path | None = None, console: Any = None,
                 quiet: bool = False, stop_on_collapse: bool = False, report_to: str = "none",
                 preamble: Sequence[str] = ()) -> None:
        self.ctx = StageContext(cfg, run_dir, data_dir=data_dir, console=console, quiet=quiet)
        self.preamble = list(preamble)  # the preflight's plan lines, shown once the run directory is ours
        self.ctx.report_to = report_to
        self.stop_on_collapse = stop_on_collapse
        self.cfg = cfg
        self.dir = self.ctx.run_dir
        self.store = self.ctx.store
        self.console = self.ctx.console

    def run(self) -> dict[str, Any]:
        """Iteration 0's eval (the base model), then every stage of iterations 1..cfg.iterations."""
        cfg, ctx = self.cfg, self.ctx
        _quiet_libraries()
        with RunLock(self.dir), stop_children_on_exit():
            reaped = reap_orphans(ctx.server_dir)
            if reaped:
                ctx.log(f"  stopped {len(reaped)} server(s) a killed run left behind (pids {reaped})")
            resumed = self.store.open(
                config=cfg.model_dump(mode="json"),
                config_hash=config_hash(cfg),
                seeds={"run": cfg.seed},
                extra={"layout": cfg.layout.model_dump(mode="json"), "model_spec": cfg.model},
            )
            ctx.log(f"[bold]rzero-bench run[/] {cfg.name} → {self.dir}" + ("  (resuming)" if resumed else ""))
            for line in self.preamble:
                ctx.console.print(line, markup=False, highlight=False)
            self.store.manifest["config"]["iterations"] = cfg.iterations  # extending a run is allowed
            self.store.manifest["finished"] = False
            self.store.manifest.pop("stopped", None)
            self.store.manifest["base_model"] = ctx.base_model
            self.store.save()
            self._stage(0, "eval", STAGES["eval"])
            for k in range(1, cfg.iterations + 1):
                for name, fn in STAGES.items():
                    if name == "label_acc" and not cfg.oracle:
                        continue
                    self._stage(k, name, fn)
                if self.stop_on_collapse and self._collapsed(k):
                    break
            self.store.manifest["finished"] = True
            self.store.save()
        return self.store.manifest

    def _collapsed(self, k: int) -> bool:
        """True (and ``stopped`` recorded) when the collapse alarm has fired by iteration k."""
        from rzero_bench.report.collapse import collapse_status

        status = collapse_status(self.dir, label_floor=self.cfg.eval.collapse_label_floor)
        if status is None or status["first_alarm"] is None or status["first_alarm"] > k:
            return False
        row = next(r for r in status["iterations"] if r["iteration"] == status["first_alarm"])
        reasons = [w for w, on in (("dev score below the best iteration's by more than its paired 95% CI",
                                    row["dev_alarm"]),
                                   (f"kept label accuracy {row['label_accuracy']} < {status['label_floor']}",
                                    row["label_alarm"])) if on]
        self.store.manifest["stopped"] = {"iteration": k, "alarm_iteration": status["first_alarm"],
                                          "best_iteration": status["best_iteration"], "reasons": reasons}
        self.store.save()
        self.ctx.log(f"[bold red]collapse alarm at iteration {status['first_alarm']}[/]: {'; '.join(reasons)}; "
                     f"stopping (best iteration by dev score: {status['best_iteration']})")
        return True

    def _stage(self, k: int, name: str, fn: StageFn) -> None:
        """Run one stage unless the manifest says it is done; record its outputs and fields."""
        key = f"iter_{k}/{name}"
        if self.store.is_done(key):
            self.ctx.log(f"  [dim]✓ {key} (done earlier, skipped)[/]")
            return
        paths = IterPaths(self.dir, k)
        paths.it.mkdir(parents=True, exist_ok=True)
        self.store.start(key)
        t0 = time.monotonic()
        self.ctx.log(f"[cyan]▶ {key}[/]")
        self.ctx.stage_key, self.ctx.servers = key, []
        info = fn(self.ctx, paths)
        if self.ctx.servers:  # every server the stage started, each stopped by now
            info["servers"] = [dict(s) for s in self.ctx.servers]
        outputs = info.pop("outputs")
        self.store.finish(key, outputs=outputs, wall_time_s=time.monotonic() - t0, **info)
        self.ctx.log(f"  [green]✓ {key}[/] {time.monotonic() - t0:.1f}s " + _brief(info))


@contextlib.contextmanager
def stop_children_on_exit() -> Iterator[None]:
    """While the run lasts, SIGTERM and SIGHUP raise ``SystemExit`` (SIGINT already raises
    ``KeyboardInterrupt``) so every ``with`` block that owns a server or a launched trainer closes
    it; on the way out any server still running is stopped. Handlers are installed only in the main
    thread, never over an ignored signal (``nohup``), and restored afterwards."""
    import signal
    import threading

    from rzero_bench.backends.served import stop_all

    def _raise(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is signal.SIG_IGN:  # e.g. SIGHUP under nohup: keep ignoring it
                continue
            previous[sig] = signal.signal(sig, _raise)
    try:
        yield
    finally:
        try:
            stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _quiet_libraries() -> None:
    """Our own progress display replaces the libraries' per-load progress bars."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _brief(info: dict[str, Any]) -> str:
    """The few manifest fields worth a glance on the stage's log line and in the summary."""
    keys = ("kept", "candidates", "well_formed", "malformed", "steps", "tokens", "label_accuracy")
    return " ".join(f"{k}={info[k]}" for k in keys if k in info and info[k] is not None)


# --------------------------------------------------------------------------- CLI entry
def run_command(
    *,
    config: Path | None,
    model: str | None,
    iterations: int | None,
    preset: str | None,
    run_dir: Path | None,
    data_dir: Path | None,
    overrides: list[str],
    stop_on_collapse: bool = False,
    dry_run: bool = False,
    gpus: int | None = None,
    gpu_memory_gib: float | None = None,
    nodes: int | None = None,
    force_preset: bool = False,
    gen_tokens_per_s: float | None = None,
    train_tokens_per_s: float | None = None,
    report_to: str = "none",
) -> None:
    """``rzero-bench run``: resolve and check the run (:mod:`rzero_bench.preflight`; nothing is written
    when a check fails, or with ``dry_run``), then run (or resume) it and print the summary tables."""
    from rzero_bench.preflight import prepare_run

    # A plan that passes is shown once the run has its directory (a locked or differently configured
    # directory is then refused in one line); a failing plan, or a dry run, is printed at once.
    plan_lines: list[str] = []
    try:
        prepared = prepare_run(config=config, model=model, iterations=iterations, preset=preset, run_dir=run_dir,
                               data_dir=data_dir, overrides=overrides, dry_run=dry_run, gpus=gpus,
                               gpu_memory_gib=gpu_memory_gib, nodes=nodes, force_preset=force_preset,
                               gen_tps=gen_tokens_per_s, train_tps=train_tokens_per_s,
                               echo=None if dry_run else plan_lines.append)
    except Exception:
        for line in plan_lines:
            print(line, file=sys.stderr, flush=True)
        raise
    if prepared is None:
        return
    cfg, rd = prepared
    if stop_on_collapse and not cfg.eval.dev_tasks and cfg.eval.collapse_label_floor is None:
        from rzero_bench.errors import UserError

        raise UserError("--stop-on-collapse needs a dev split (eval.dev_tasks, e.g. --set eval.dev_tasks=[micro_arith_dev]) "
                        "or eval.collapse_label_floor")
    from rzero_bench.training.grpo import report_to_list

    report_to_list(report_to)  # a bad target or a missing package fails before any stage runs
    pipe = Pipeline(cfg, rd, data_dir=data_dir, stop_on_collapse=stop_on_collapse, report_to=report_to,
                    preamble=plan_lines)
    manifest = pipe.run()
    print_summary(manifest, pipe.console, rd)


def print_summary(manifest: dict[str, Any], console: Any, run_dir: Path) -> None:
    """One row per stage (time, brief fields), then accuracy per task and iteration."""
    from rich.table import Table

    table = Table(title=f"run {run_dir}")
    table.add_column("stage")
    table.add_column("time (s)", justify="right")
    table.add_column("details")
    for name, st in manifest["stages"].items():
        table.add_row(name, f"{st.get('wall_time_s', 0):.1f}", _brief(st))
    console.print(table)
    evals = [(n, st) for n, st in manifest["stages"].items() if n.endswith("/eval")]
    if evals:
        tasks = sorted({t for _, st in evals for t in st.get("scores", {})})
        t2 = Table(title="accuracy per iteration (acc, greedy)")
        t2.add_column("task")
        for n, _ in evals:
            t2.add_column(n.split("/")[0], justify="right")
        for t in tasks:
            row = [t]
            for _, st in evals:
                v = st.get("scores", {}).get(t, {}).get("acc")
                row.append("—" if v is None else f"{100 * v:.1f}")
            t2.add_row(*row)
        console.print(t2)
    console.print(f"report: rzero-bench report {run_dir}")
