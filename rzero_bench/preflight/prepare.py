"""``rzero-bench run`` before anything is written: model name, preset, hardware, layout, plan.

:func:`prepare_run` resolves the model name (a bare name of a reference model becomes its hub id),
chooses the base preset (:func:`choose_preset`: explicit ``--preset`` > the config file's > paper
for a real model > tiny), loads the config, takes the hardware (this machine, or the one described
by ``--gpus N --gpu-memory-gib G [--nodes K]``), fills the auto layout for it, builds the plan and
prints it. With ``--dry-run`` the plan is printed in full and nothing is written; failed checks
raise :class:`PreflightError` (exit 2) before the run directory is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rzero_bench.config import RunConfig, load_config
from rzero_bench.errors import UserError
from rzero_bench.models import Resolution, is_small_model, model_shape, resolve_name
from rzero_bench.preflight.hardware import Hardware, detect_hardware
from rzero_bench.preflight.layout import derive_layout
from rzero_bench.preflight.plan import DEFAULT_GEN_TOKENS_PER_S, DEFAULT_TRAIN_TOKENS_PER_S, build_plan
from rzero_bench.preflight.render import render_checks, render_plan

SMALL_PRESETS = ("tiny", "micro")


class PreflightError(UserError):
    """One or more preflight checks failed (each was printed on its own line)."""


def choose_preset(res: Resolution | None, *, preset: str | None, file_preset: str | None,
                  has_file: bool, force: bool = False) -> tuple[str | None, str]:
    """The base preset of a run and why: explicit > the config file's > paper for a real model > tiny.

    The tiny and micro presets (lr 1e-4, 64-token completions, 64 questions, 5 eval items) are for
    ``tiny:`` / ``micro:`` models; pairing one with a real model is refused unless ``force``.
    """
    chosen, why = preset, "--preset"
    if chosen is None and file_preset:
        chosen, why = file_preset, "from the config file"
    if chosen is None and not has_file:
        if res is not None and not is_small_model(res):
            chosen, why = "paper", "no --preset given: a real model runs the paper's settings"
        else:
            chosen, why = "tiny", "the CPU default"
    if chosen in SMALL_PRESETS and res is not None and not is_small_model(res) and not force:
        raise UserError(f"the {chosen} preset is for tiny:/micro: models (learning rate 1e-4, 64-token completions, "
                        f"64 questions, 5 eval items); with {res.model} use --preset paper (the default for a real "
                        "model) or official-code, or add --force-preset to run it anyway")
    return chosen, why


def _file_data(config: Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}  # load_config reports the problem properly
    return data if isinstance(data, dict) else {}


def _user_keys(file_data: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    keys = [s.split("=", 1)[0].strip() for s in overrides if "=" in s]
    for section, value in file_data.items():
        if isinstance(value, dict):
            keys += [f"{section}.{k}" for k in value]
        else:
            keys.append(str(section))
    return keys


def _model_spec(model: str | None, overrides: Sequence[str], file_data: dict[str, Any]) -> str | None:
    spec = None
    for s in overrides:
        if s.split("=", 1)[0].strip() == "model" and "=" in s:
            spec = s.split("=", 1)[1].strip()
    if spec is None:
        spec = model
    if spec is None and isinstance(file_data.get("model"), str):
        spec = file_data["model"]
    return spec


# --------------------------------------------------------------------------- entry
def prepare_run(*, config: Path | None, model: str | None, iterations: int | None, preset: str | None,
                run_dir: Path | None, data_dir: Path | None, overrides: Sequence[str], dry_run: bool = False,
                gpus: int | None = None, gpu_memory_gib: float | None = None, nodes: int | None = None,
                force_preset: bool = False, gen_tps: float | None = None, train_tps: float | None = None,
                echo: Any = None) -> tuple[RunConfig, Path] | None:
    """Resolve and check a run before anything is written; None after a dry run.

    Prints the plan (in full with ``dry_run``) and the checks through ``echo`` (stderr by default);
    raises :class:`PreflightError` (exit 2) when a check failed. The run directory is not touched.
    """
    if echo is None:
        import sys

        def echo(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    if gpu_memory_gib is not None and gpus is None:
        raise UserError("--gpu-memory-gib describes the GPUs of --gpus N; give both")
    file_data = _file_data(config)
    spec = _model_spec(model, overrides, file_data)
    res = resolve_name(spec) if spec is not None else None
    base, why = choose_preset(res, preset=preset, file_preset=file_data.get("preset") if isinstance(
        file_data.get("preset"), str) else None, has_file=config is not None, force=force_preset)
    cfg = load_config(config, preset=base, model=model, iterations=iterations, overrides=list(overrides))
    if res is None:
        res = resolve_name(cfg.model)
    if res.kind == "hub" and cfg.model != res.model:  # a bare name becomes its hub id; paths stay as given
        cfg.model = res.model
    if base in SMALL_PRESETS and not is_small_model(res) and not force_preset:
        choose_preset(res, preset=base, file_preset=None, has_file=True)  # raises the refusal
    # hardware: this machine, or the one described by --gpus (a plan for elsewhere with --dry-run)
    if gpus is not None:
        if gpus < 1:
            raise UserError("--gpus must be >= 1")
        if dry_run:
            hw = Hardware(gpus, gpu_memory_gib, nodes or 1, planned=True, source="--gpus")
        else:
            here = detect_hardware(nodes=nodes)
            if here.gpus and gpus > here.gpus:
                raise UserError(f"--gpus {gpus} but this machine shows {here.gpus}; plan for another machine with "
                                "--dry-run --gpus N --gpu-memory-gib G")
            hw = Hardware(gpus, gpu_memory_gib or here.memory_gib, here.nodes, here.names, here.free_gib,
                          source=here.source) if here.gpus else here
    else:
        hw = detect_hardware(nodes=nodes)
    shape, _ = model_shape(res)
    cfg = derive_layout(cfg, hw.gpus, hw.nodes, user_keys=_user_keys(file_data, overrides),
                        memory_gib=hw.memory_gib, shape=shape)
    rd = run_dir or Path("runs") / cfg.name
    plan = build_plan(cfg, res=res, preset=base or "-", preset_why=why, hardware=hw, data_dir=data_dir, run_dir=rd,
                      gen_tps=gen_tps or DEFAULT_GEN_TOKENS_PER_S, train_tps=train_tps or DEFAULT_TRAIN_TOKENS_PER_S)
    if plan.max_model_len and cfg.layout.max_model_len is None and cfg.layout.generation_backend in ("served", "vllm"):
        cfg.layout.max_model_len = plan.max_model_len
    for line in render_plan(plan, full=dry_run).splitlines():
        echo(line)
    checks = render_checks(plan)
    if checks:
        echo("checks:")
        for line in checks:
            echo(line)
    if plan.failed:
        raise PreflightError(f"{len(plan.failed)} preflight check(s) failed (listed above); nothing was written"
                             + (f" ({rd} not created)" if not rd.exists() else ""))
    if dry_run:
        echo("dry run: nothing was written")
        return None
    return cfg, rd
