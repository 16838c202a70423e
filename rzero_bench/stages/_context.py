"""What every stage is handed: the run's shared state (:class:`StageContext`) and one iteration's
paths (:class:`IterPaths`), plus the small helpers more than one stage uses.

A stage is a plain function ``run(ctx: StageContext, p: IterPaths) -> StageResult``. It reads its
inputs from ``p.it`` (``runs/<run>/iter_<k>/``), writes its outputs there atomically, and returns a
:data:`StageResult`: ``{"outputs": [paths relative to the run directory], <manifest fields>...}``.
The driver (:mod:`rzero_bench.pipeline`) pops ``outputs``, records the rest in ``manifest.json``
under ``iter_<k>/<stage>`` and marks the stage done only after the function returned.

To give stages something new (a served engine, a preflight result, a dev split), add an attribute
or a method to :class:`StageContext`; no stage signature changes.

Seeds: every stage that samples draws its seed from :func:`stage_seed` (run seed, iteration, stage
name), so a resumed run reproduces exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rzero_bench.config import RunConfig
from rzero_bench.errors import UserError
from rzero_bench.prompts import load_prompt
from rzero_bench.stages._progress import TrainDisplay
from rzero_bench.store import RunStore

StageResult = dict[str, Any]
"""A stage's return value: ``outputs`` (list of run-relative paths) plus fields for the manifest."""


def stage_seed(base: int, iteration: int, stage: str) -> int:
    """A distinct, reproducible seed per (run seed, iteration, stage): the first 32 bits of
    ``sha256("<base>:<iteration>:<stage>")``."""
    h = hashlib.sha256(f"{base}:{iteration}:{stage}".encode()).hexdigest()
    return int(h[:8], 16)


# --------------------------------------------------------------------------- model resolution
def check_model_spec(spec: str) -> None:
    """Cheap validation of a model spec before any work starts (a bad path fails in milliseconds)."""
    if spec.startswith(("tiny:", "micro:")):
        from rzero_bench.models import resolve_name

        resolve_name(spec)  # the size is there, a micro budget is minutes or a named recipe
        return
    p = Path(spec).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"model path {p} has no config.json; point --model at a save_pretrained directory")
    elif spec.startswith((".", "/", "~")):
        raise UserError(f"model path not found: {spec}")


def resolve_model(spec: str, *, seed: int = 0, progress: Any = None) -> str:
    """Turn a model spec into something ``from_pretrained`` accepts.

    ``tiny:<size>`` builds (or reuses) the offline random-init tiny model; ``micro:<size>[@<budget>]``
    the briefly pretrained micro base (arithmetic worked solutions and challenger-format examples;
    the budget is nominal minutes or a named recipe such as ``demo``);
    an existing path is used as is; anything else is passed on as a hub id. ``progress`` receives
    the micro pretraining's ``(phase, step, total, loss)`` events.
    """
    if spec.startswith("tiny:"):
        from rzero_bench.training.tiny import build_tiny

        return str(build_tiny(spec.split(":", 1)[1]))
    if spec.startswith("micro:"):
        from rzero_bench.micro.pretrain import pretrain_micro
        from rzero_bench.micro.recipe import parse_budget

        size, at, text = spec.split(":", 1)[1].partition("@")
        minutes, named = parse_budget(text, spec) if at else (None, None)
        return str(pretrain_micro(size, seed=seed, minutes=minutes, budget=named, progress=progress))
    check_model_spec(spec)
    p = Path(spec).expanduser()
    return str(p.resolve()) if p.exists() else spec


# --------------------------------------------------------------------------- per-iteration paths
@dataclass
class IterPaths:
    """Paths of iteration ``k`` inside the run directory ``root``."""

    root: Path
    k: int

    @property
    def it(self) -> Path:
        """``<root>/iter_<k>``: where the iteration's artefacts live."""
        return self.root / f"iter_{self.k}"

    def rel(self, p: Path) -> str:
        """``p`` relative to the run directory, as recorded in the manifest's ``outputs``."""
        return str(p.relative_to(self.root))


# --------------------------------------------------------------------------- the context
class StageContext:
    """The run-wide state a stage may use.

    Attributes: ``cfg`` (the resolved :class:`RunConfig`), ``run_dir``, ``store`` (the open
    :class:`RunStore`; ``store.manifest`` holds earlier stages' fields), ``console`` (rich, on
    stderr), ``quiet``, ``prompts`` (role -> loaded prompt template), ``data_dir`` (the local
    benchmark mirror, or None for the default).
    """

    def __init__(self, cfg: RunConfig, run_dir: Path, *, data_dir: Path | None = None, console: Any = None,
                 quiet: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.data_dir = data_dir
        self.store = RunStore(self.run_dir)
        self.quiet = quiet
        if console is None:
            from rich.console import Console

            # soft_wrap: a progress line in a log stays one line (no cut at 80 columns); tables keep their width
            console = Console(stderr=True, quiet=quiet, soft_wrap=True)
        self.console = console
        self.prompts = {role: load_prompt(name) for role, name in cfg.prompts.items()}
        check_model_spec(cfg.model)
        self._base_model: str | None = None
        self.stage_key = ""  # "iter_<k>/<stage>" while a stage runs (set by the driver)
        self.servers: list[dict[str, Any]] = []  # servers started by the running stage (served backend)
        self.server_dir = self.run_dir / ".servers"  # pidfiles of running servers (reaped on resume)
        self.report_to = "none"  # where GRPO stages report metrics (run --report-to; not part of the config)

    def log(self, msg: str) -> None:
        self.console.print(msg)

    # ---- models and generators
    @property
    def base_model(self) -> str:
        """The resolved base model (built or pretrained on first use for ``tiny:`` / ``micro:``)."""
        if self._base_model is None:
            from rzero_bench.stages._progress import BuildDisplay

            progress = None if self.quiet else BuildDisplay(self.console, f"{self.cfg.model} base")
            self._base_model = resolve_model(self.cfg.model, seed=self.cfg.seed, progress=progress)
        return self._base_model

    def model_for(self, role: str, k: int) -> str:
        """Checkpoint of ``role`` after iteration k (k = 0: the base model). A challenger whose
        training was skipped (``challenger.max_steps: 0``) is its predecessor."""
        if k == 0:
            return self.base_model
        if role == "challenger" and self.store.manifest.get("stages", {}).get(f"iter_{k}/challenger", {}).get(
            "skipped_training"
        ):
            return self.model_for("challenger", k - 1)
        return str(self.run_dir / f"iter_{k}" / role)

    def generator(self, model_path: str, *, role: str = "solver") -> Any:
        """A context-managed :class:`~rzero_bench.backends.base.Generator` for ``model_path`` on the
        configured ``layout.generation_backend``.

        ``role="reward"``: the solver inside the challenger's reward, served next to challenger GRPO
        (on ``layout.serve_gpus``, with ``shared_gpu_memory_utilization`` when it shares their GPUs);
        other stages only sample and serve on ``layout.sampling_gpus`` (:meth:`serve_options`)."""
        from rzero_bench.backends import make_generator

        lay = self.cfg.layout
        if lay.generation_backend == "openai":
            if not lay.solver_server_url:
                raise UserError("layout.generation_backend is openai but layout.solver_server_url is not set")
            return make_generator("openai", model_path, base_url=lay.solver_server_url, api_key_env=lay.api_key_env)
        if lay.generation_backend == "served":
            log_name = (
                f"{self.stage_key.replace('/', '-')}-{role}-server.log"
                if self.stage_key
                else f"{role}-server.log"
            )
            gen = make_generator(
                "served",
                model_path,
                engine=lay.serve_engine,
                command=lay.serve_command,
                **self.serve_options(during_training=role == "reward"),
                api_key_env=lay.api_key_env,
                pid_dir=self.server_dir,
                log_path=self.run_dir / "logs" / log_name,
                threads=lay.cpu_threads if lay.serve_engine == "transformers" else None,
            )
            self.servers.append(getattr(gen, "info", {}))  # the driver records it in the stage's manifest entry
            return gen
        if lay.generation_backend == "vllm":
            return make_generator("vllm", model_path, gpu_memory_utilization=lay.gpu_memory_utilization)
        return make_generator("hf", model_path, batch_size=self.cfg.eval.batch_size, threads=lay.cpu_threads)

    def serve_options(self, during_training: bool = False) -> dict[str, Any]:
        """``served`` backend options from the layout: GPUs, vLLM memory share, max_model_len, and
        requests in flight (``serve_concurrency``, else 256 per serving GPU for vLLM, whose engines
        run up to 256 sequences each by default; queued requests wait, hence the 1-hour timeout)."""
        lay = self.cfg.layout
        gpus = lay.serve_gpus if during_training else (lay.sampling_gpus or lay.serve_gpus)
        ids = {g.strip() for g in (gpus or "").split(",") if g.strip()}
        trains = {g.strip() for g in (lay.challenger_gpus or "").split(",") if g.strip()}
        share = (lay.shared_gpu_memory_utilization if during_training and ids & trains
                 else lay.serve_gpu_memory_utilization)
        opts: dict[str, Any] = {"gpus": gpus, "max_model_len": lay.max_model_len, "gpu_memory_utilization": share}
        if lay.serve_concurrency:
            opts["concurrency"] = lay.serve_concurrency
        elif getattr(lay, "serve_engine", "vllm") == "vllm":
            opts["concurrency"] = 256 * max(1, len(ids))
        if getattr(lay, "serve_engine", "vllm") == "vllm":
            opts["timeout"] = 3600.0
        return opts

    # ---- progress display
    def progress(self, description: str, total: int) -> Any:
        """A transient rich progress bar (silent when quiet); stages add one task to it."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        return Progress(
            TextColumn("  {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            # a transient bar shows nothing in a log file but leaves an empty line: terminals only
            disable=self.quiet or not getattr(self.console, "is_terminal", False),
        )

    def grpo_settings(self, role: str, k: int) -> Any:
        """:func:`role_settings` for ``role`` at iteration k (its stage seed), plus where TRL reports
        its metrics (``report_to``: run name ``<run>-iter<k>-<role>``, TensorBoard files under
        ``<run dir>/tensorboard/iter_<k>-<role>``)."""
        import dataclasses

        settings = role_settings(self.cfg, role, stage_seed(self.cfg.seed, k, role))
        if self.report_to in ("", "none"):
            return settings
        return dataclasses.replace(settings, report_to=self.report_to, run_name=f"{self.cfg.name}-iter{k}-{role}",
                                   tensorboard_dir=str(self.run_dir / "tensorboard" / f"iter_{k}-{role}"))

    def train_progress(self, label: str) -> TrainDisplay:
        """The GRPO stage's live display: call it as the trainer's ``progress(step, total, logs)``;
        ``.sampling(done, total)`` follows the challenger reward's solver sampling (see
        :mod:`rzero_bench.stages._progress`)."""
        return TrainDisplay(self.console, label, quiet=self.quiet)

    # ---- multi-process training
    def launch(self, role: str, p: IterPaths, common: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Run a GRPO stage under ``accelerate launch`` (see :mod:`rzero_bench.training.launch`).

        ``common`` holds the trainer's keyword arguments; they travel as a JSON spec written to
        ``iter_<k>/.<role>_launch.json`` and the trainer's statistics come back through
        ``iter_<k>/.<role>_stats.json``.
        """
        from rzero_bench.training.launch import run_launched

        spec = {k: (str(v) if isinstance(v, Path) else v) for k, v in common.items()}
        spec["settings"] = common["settings"].to_dict()
        spec.update(role=role, stats_path=str(p.it / f".{role}_stats.json"),
                    progress_path=str(p.it / f".{role}_progress.jsonl"), **extra)
        lay = self.cfg.layout
        gpus = lay.challenger_gpus if role == "challenger" else lay.solver_gpus
        display = self.train_progress(f"{role} GRPO (accelerate)")
        try:
            stats = run_launched(
                spec,
                p.it / f".{role}_launch.json",
                lay.accelerate_config or "",
                gpus=gpus,
                prefix=lay.launch_prefix,
                nodes=lay.nodes,
                on_event=display.event,
            )
        finally:
            display.close()
        # what ran where, for the manifest: the launcher and the number of ranks that trained
        return {**stats, "launcher": "accelerate", "world_size": stats.get("num_processes")}


# --------------------------------------------------------------------------- helpers for the GRPO stages
def role_settings(cfg: RunConfig, role: str, seed: int) -> Any:
    """Map a role's config (``cfg.challenger`` or ``cfg.solver``) onto the trainer's plain
    :class:`~rzero_bench.training.grpo.GRPOSettings` (batch split, clipping, checkpointing, the
    layout's colocated vLLM share)."""
    from rzero_bench.training.grpo import GRPOSettings

    return GRPOSettings.from_role(cfg, role, seed)


def stats_dict(stats: Any) -> dict[str, Any]:
    """Trainer statistics for the manifest (``train_wall_time_s`` is the trainer's own clock)."""
    if stats is None:
        return {}
    d = dict(stats.to_dict()) if hasattr(stats, "to_dict") else dict(stats)
    if "wall_time_s" in d:
        d["train_wall_time_s"] = d.pop("wall_time_s")
    if "tokens_generated" in d:
        d["tokens"] = d.pop("tokens_generated")
    return d


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree if present (a stage rerun starts from a clean output)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
