"""Command-line interface. Thin: parses options, lazily imports the module doing the work.

Nothing heavy (torch, transformers, trl, datasets) is imported at start-up, so every ``--help``
answers in well under a second.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from rzero_bench.errors import RZeroError, UserError

app = typer.Typer(
    name="rzero-bench",
    help="Reproduce, measure and extend R-Zero: self-evolving reasoning LLMs from zero data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: importing rich's help renderer costs ~0.3 s per call
)
tasks_app = typer.Typer(help="List, validate and inspect benchmark task definitions.", no_args_is_help=True)
tiny_app = typer.Typer(help="Build the tiny offline models used by CI and the default run.", no_args_is_help=True)
micro_app = typer.Typer(help="Micro R-Zero: arithmetic world with an exact oracle.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(tiny_app, name="tiny")
app.add_typer(micro_app, name="micro")
data_app = typer.Typer(help="Build the local benchmark mirror (the RZERO_DATA_DIR layout).", no_args_is_help=True)
app.add_typer(data_app, name="data")
config_app = typer.Typer(help="Show the resolved run config with each field's meaning and source.", no_args_is_help=True)
app.add_typer(config_app, name="config")

DATA_DIR_HELP = "Local mirror of the benchmark data laid out like ../shared/benchmarks (default: $RZERO_DATA_DIR; else the hub)."
TASKS_DIR_HELP = "Directory of task YAML files (default: the tasks shipped with the package)."


def _data_dir(value: Path | None) -> Path | None:
    if value is not None:
        return value
    env = os.environ.get("RZERO_DATA_DIR")
    return Path(env) if env else None


# ---------------------------------------------------------------- run
@app.command()
def run(
    config: Path | None = typer.Argument(None, help="Run config YAML (default: the tiny preset)."),
    model: str | None = typer.Option(None, "--model", help="Base model: hub id, local path, a bare name of a "
                                     "reference model (Qwen3-4B-Base -> Qwen/Qwen3-4B-Base), tiny:<size> or micro:<size>[@minutes|@demo]."),
    iterations: int | None = typer.Option(None, "--iterations", "-n", min=1, help="Number of co-evolution iterations."),
    preset: str | None = typer.Option(None, "--preset", help="Preset: paper (default for a real model), official-code, "
                                      "tiny (default without --model), micro."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Run directory (default: runs/<run name>)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    set_: list[str] = typer.Option([], "--set", help="Override a config value: --set solver.lr=1e-6 (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (layout, memory per GPU, lengths, tokens and "
                                 "time per stage) and the checks; write nothing."),
    gpus: int | None = typer.Option(None, "--gpus", min=1, help="GPUs per node to plan for (with --dry-run: a machine "
                                    "you do not have; without: use N of the visible GPUs)."),
    gpu_memory_gib: float | None = typer.Option(None, "--gpu-memory-gib", min=1, help="Memory of each GPU of --gpus, GiB."),
    nodes: int | None = typer.Option(None, "--nodes", min=1, help="Nodes for GRPO (default: Slurm's node count, else 1)."),
    force_preset: bool = typer.Option(False, "--force-preset", help="Allow the tiny/micro presets with a real model."),
    gen_tokens_per_s: float | None = typer.Option(None, "--gen-tokens-per-s", min=1, help="Plan: generation "
                                                  "throughput per GPU for a 4B model (default 3000)."),
    train_tokens_per_s: float | None = typer.Option(None, "--train-tokens-per-s", min=1, help="Plan: training "
                                                    "throughput per GPU for a 4B model (default 2000)."),
    baseline: str | None = typer.Option(None, "--baseline", help="Named baseline: base-challenger (the solver trains on "
                                        "questions from the untrained challenger; sets challenger.max_steps=0)."),
    stop_on_collapse: bool = typer.Option(False, "--stop-on-collapse", help="Stop after the iteration that raises the "
                                          "collapse alarm (dev score or kept label accuracy; needs eval.dev_tasks or "
                                          "eval.collapse_label_floor)."),
    report_to: str = typer.Option("none", "--report-to", help="Where GRPO stages report training metrics (TRL "
                                  "report_to): none, or tensorboard / wandb / trackio, comma-separated; files under "
                                  "<run dir>/tensorboard/, runs named <run>-iter<k>-<role>."),
    include_path: list[Path] = typer.Option([], "--include-path", help="Directory of extra task YAML files (and "
                                            "suites/) added to the shipped ones for the eval stage (repeatable; "
                                            "sets eval.include_paths)."),
) -> None:
    """Run the R-Zero co-evolution loop (resumable: rerun the same command to continue).

    Checks first (GPUs, packages, the model, memory per GPU, prompt lengths, disk) and writes
    nothing when one fails; --dry-run prints the whole plan.
    """
    import json

    from rzero_bench.pipeline import run_command

    if include_path:  # absolute, so the run resumes from any directory (the config hash includes them)
        set_ = [*set_, "eval.include_paths=" + json.dumps([str(p.expanduser().resolve()) for p in include_path])]
    run_command(config=config, model=model, iterations=iterations, preset=preset, run_dir=run_dir,
                data_dir=_data_dir(data_dir), overrides=[*set_, f"baseline={baseline}"] if baseline else set_,
                stop_on_collapse=stop_on_collapse, dry_run=dry_run, gpus=gpus,
                gpu_memory_gib=gpu_memory_gib, nodes=nodes, force_preset=force_preset,
                gen_tokens_per_s=gen_tokens_per_s, train_tokens_per_s=train_tokens_per_s, report_to=report_to)


# ---------------------------------------------------------------- eval
@app.command("eval")
def eval_(
    model: str = typer.Argument(..., help="Checkpoint path, hub id, tiny:<size> / micro:<size> (built locally), "
                                "or served model name (openai backend)."),
    suite: str | None = typer.Option(None, "--suite", help="Task suite: rzero | math | general."),
    tasks: str | None = typer.Option(None, "--tasks", help="Comma-separated task names."),
    protocol: str = typer.Option("paper", "--protocol", help="Evaluation protocol: paper (sampled mean@32 for AMC/AIME, "
                                 "our prompts) | official (what the official R-Zero scripts do: greedy AMC/AIME, "
                                 "General-Reasoner prompts and 8192 tokens for MMLU-Pro/SuperGPQA with a random "
                                 "letter when unparsed, OlympiadBench's first answer, BBEH from MrLight/bbeh-eval). "
                                 "Recorded in every result; see tasks/protocols/."),
    backend: str = typer.Option("hf", "--backend", help="hf | vllm | openai."),
    model_args: str | None = typer.Option(None, "--model-args", help="Backend options as key=value,key=value (lm-eval "
                                          "style): dtype, revision, trust_remote_code, tensor_parallel_size, "
                                          "gpu_memory_utilization, max_model_len, concurrency, device, threads, timeout; "
                                          "each backend accepts its own subset."),
    gen_kwargs: str | None = typer.Option(None, "--gen-kwargs", help="Override every task's main-pass generation_kwargs: "
                                          "temperature, top_p, top_k, max_gen_toks (alias max_new_tokens), do_sample, "
                                          "until (a|b). Changes the recorded task hash."),
    apply_chat_template: bool = typer.Option(True, "--apply-chat-template/--no-apply-chat-template",
                                             help="Render prompts with the model's chat template (default), or as plain "
                                             "text (system prompt, blank line, question) for base models without one."),
    system_instruction: str | None = typer.Option(None, "--system-instruction", help="System prompt for every task "
                                                  "(replaces the task's own; \"\" for none). Changes the recorded task hash."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate a seeded subsample of N items per task."),
    seed: int = typer.Option(0, "--seed", help="Seed for --limit subsampling and sampled metrics (each item and sample "
                             "draws its own stream derived from it)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="Override the generation length of every task."),
    max_k: int | None = typer.Option(None, "--max-k", min=1, help="Cap k of sampled metrics (mean@k, maj@k, pass@k) for "
                                     "quick runs; labels show the k used (mean@4)."),
    max_samples: int | None = typer.Option(None, "--max-samples", min=1, hidden=False,
                                           help="Deprecated alias of --max-k (it caps k; it does not limit items: use --limit)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Results directory (default: results/<org__name> for "
                                       "a hub id, results/<parent>__<name>-<path hash> for a local checkpoint; a "
                                       "directory holding another model's results is refused)."),
    output_format: str = typer.Option("rzero", "--output-format", help="rzero (<task>.json + samples) | lm-eval (also "
                                      "results_<timestamp>.json in lm-eval's schema)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP + " Replaces the shipped tasks."),
    include_path: list[Path] = typer.Option([], "--include-path", help="Directory of extra task YAML files (and suites/) "
                                            "added to the shipped ones (repeatable)."),
    base_url: str | None = typer.Option(None, "--base-url", help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="openai backend: name of the env var holding the key."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="hf backend: prompts per generate() call."),
    judge: str | None = typer.Option(None, "--judge", help="Re-check math verdicts with an LLM judge, both ways "
                                     "(openai:<model>@<base_url>): wrong answers it accepts and non-exact matches it "
                                     "rejects are flipped in separate <metric>+judge metrics; the headline is unchanged."),
    judge_api_key_env: str = typer.Option("OPENAI_API_KEY", "--judge-api-key-env", help="Env var holding the judge's key."),
) -> None:
    """Score a checkpoint on benchmark tasks; writes <task>.json and <task>.samples.jsonl."""
    from rzero_bench.evaluate import eval_command

    if max_samples is not None:
        typer.echo("warning: --max-samples is deprecated (it caps k of sampled metrics); use --max-k", err=True)
        if max_k is not None and max_k != max_samples:
            raise UserError("--max-samples is an alias of --max-k; pass only --max-k")
    label = None
    if model.startswith(("tiny:", "micro:")):
        from rzero_bench.pipeline import resolve_model

        label, model = model, resolve_model(model, seed=seed)
    eval_command(model=model, suite=suite, tasks=tasks, backend=backend, limit=limit, seed=seed,
                 max_tokens=max_tokens, output=output, data_dir=_data_dir(data_dir), tasks_dir=tasks_dir,
                 include_paths=include_path, base_url=base_url, api_key_env=api_key_env, batch_size=batch_size,
                 max_k=max_k if max_k is not None else max_samples, protocol=protocol, model_args=model_args,
                 gen_kwargs=gen_kwargs, apply_chat_template=apply_chat_template,
                 system_instruction=system_instruction, output_format=output_format, model_label=label,
                 judge=judge, judge_api_key_env=judge_api_key_env)


@app.command()
def rescore(
    results_dir: Path = typer.Argument(..., help="A results directory written by `eval` or `run`."),
    tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP),
) -> None:
    """Re-grade saved generations with the current grader (no model needed)."""
    from rzero_bench.evaluate import rescore_command

    rescore_command(results_dir=results_dir, tasks_dir=tasks_dir)


@app.command("label-acc")
def label_acc(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    oracle: str = typer.Option(..., "--oracle", help="openai:<model>[@<base_url>] | hf:<path> | reference | exact-arith."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Env var holding the oracle's API key."),
    samples: int = typer.Option(1, "--samples", "-k", min=1, help="hf oracle: majority of k samples."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="Also score a seeded sample of N questions per iteration (the paper: 200)."),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample (per iteration: '<seed>:<k>')."),
    cross: bool = typer.Option(False, "--cross", help="Cross-iteration table: every solver checkpoint on every iteration's kept questions (greedy)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="--cross: answer length (default: the run's selfplay.solver_max_tokens)."),
) -> None:
    """Score each iteration's pseudo-labels against an oracle (accuracy and calibration)."""
    from rzero_bench.report.label_acc import label_acc_command

    label_acc_command(run_dir=run_dir, oracle=oracle, api_key_env=api_key_env, samples=samples, sample=sample,
                      seed=seed, cross=cross, max_tokens=max_tokens)


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="Run directories (or results directories)."),
    format: str = typer.Option("table", "--format", "-f", help="table | md | json | csv."),
    plots: Path | None = typer.Option(None, "--plots", help="Write PNG plots (accuracy per iteration, p-hat histograms, label calibration) to this directory."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """Comparison tables: base vs each iteration, deltas with paired-bootstrap 95% CIs."""
    from rzero_bench.report.tables import report_command

    report_command(runs=runs, fmt=format, plots=plots, seed=seed)


@app.command()
def leaderboard(
    check: bool = typer.Option(False, "--check", help="Exit non-zero when leaderboard/README.md is stale."),
    results: Path = typer.Option(Path("results"), "--results", help="Results directory."),
    out: Path = typer.Option(Path("leaderboard"), "--out", help="Output directory."),
) -> None:
    """Regenerate leaderboard/README.md from results/ (never edit it by hand)."""
    from rzero_bench.report.leaderboard import leaderboard_command

    leaderboard_command(check=check, results=results, out=out)


@app.command()
def check(
    run_dir: Path = typer.Argument(..., help="Run (or results) directory to check."),
    baseline: Path = typer.Option(..., "--baseline", help="Committed baseline results directory or JSON."),
    z: float = typer.Option(3.0, "--z", help="Tolerance in standard errors of the difference: a metric fails "
                            "when baseline - fresh > z * sqrt(se_baseline^2 + se_fresh^2)."),
) -> None:
    """Regression check: exit 1 when a metric drops by more than z standard errors of the difference.

    Each metric's tolerance is z * sqrt(se_baseline^2 + se_fresh^2), from the standard errors stored
    with the results (suite means: sqrt(sum se_i^2) / t). A changed task hash or a missing task also fails.
    """
    from rzero_bench.report.check import check_command

    check_command(run_dir=run_dir, baseline=baseline, z=z)


@app.command()
def contamination(
    run_dir: Path = typer.Argument(..., help="Run directory (reads iter_<k>/questions.jsonl)."),
    n: int = typer.Option(13, "--n", min=1, help="n-gram length in normalized tokens (13: the GPT-3 / lm-eval rule)."),
    suite: str | None = typer.Option(None, "--suite", help="Benchmark suite to check against (default: the run's eval and dev tasks)."),
    tasks: str | None = typer.Option(None, "--tasks", help="Comma-separated task names to check against."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP),
    output: Path | None = typer.Option(None, "--output", "-o", help="Report JSON (default: RUN_DIR/contamination.json)."),
) -> None:
    """Generated questions that share an n-gram with a benchmark item, per iteration and task."""
    from rzero_bench.report.contamination import contamination_command

    contamination_command(run_dir, n=n, suite=suite, tasks=tasks, data_dir=_data_dir(data_dir),
                          tasks_dir=tasks_dir, output=output)


@app.command("audit-grader")
def audit_grader(
    results_dir: Path = typer.Argument(..., help="Results directory (searched recursively for *.samples.jsonl)."),
    graders: str | None = typer.Option(None, "--graders", help="Comma-separated: rzero, fast, math-verify, mathruler, llm (default: all but llm)."),
    judge: str | None = typer.Option(None, "--judge", help="LLM judge: openai:<model>[@<base_url>] (adds the llm grader)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Env var holding the judge's API key."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds one answer may take in a worker grader before it counts as a timeout."),
    examples: int = typer.Option(3, "--examples", min=0, help="Examples shown per disagreement direction."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Report JSON (default: RESULTS_DIR/grader_audit.json)."),
) -> None:
    """Re-grade saved answers with several graders; two-sided disagreement table per pair of graders."""
    from rzero_bench.report.audit import audit_command

    audit_command(results_dir, graders=graders, judge=judge, api_key_env=api_key_env, timeout=timeout,
                  examples=examples, output=output)


# ---------------------------------------------------------------- config
@config_app.command("show")
def config_show(
    config: Path | None = typer.Argument(None, help="Run config YAML (default: the tiny preset)."),
    preset: str | None = typer.Option(None, "--preset", help="Preset: tiny (default), paper, official-code, micro."),
    model: str | None = typer.Option(None, "--model", help="Base model (overrides the config)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value: --set solver.lr=1e-6 (repeatable)."),
) -> None:
    """Print the resolved config as YAML, each field preceded by its description (paper section, official value).

    The output is itself a valid run config: save it, edit it, run it.
    """
    from rzero_bench.config import config_hash, load_config, render_config

    cfg = load_config(config, preset=preset, model=model, overrides=set_)
    typer.echo(f"# rzero-bench resolved config; config_hash {config_hash(cfg)}")
    typer.echo(render_config(cfg), nl=False)


# ---------------------------------------------------------------- data
@data_app.command("fetch")
def data_fetch(
    tasks: str | None = typer.Option(None, "--tasks", help="Comma-separated task names (default: every task)."),
    suite: str | None = typer.Option(None, "--suite", help="Task suite: rzero | math | general."),
    protocol: str | None = typer.Option(None, "--protocol", help="Also fetch the data this protocol's variants read "
                                        "(official: MrLight/bbeh-eval)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Mirror to build (default: $RZERO_DATA_DIR)."),
    tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP),
    include_path: list[Path] = typer.Option([], "--include-path", help="Directory of extra task YAML files (repeatable)."),
    hub_dir: Path | None = typer.Option(None, "--hub-dir", help="A local directory standing in for the hub "
                                        "(<hub-dir>/<dataset_path>/[<config>/]<split>.jsonl); no network."),
    force: bool = typer.Option(False, "--force", help="Fetch files that already exist again."),
) -> None:
    """Download each task's test split from the hub into the mirror layout; provenance in SOURCES.json."""
    from rzero_bench.datafetch import fetch_command

    fetch_command(data_dir=_data_dir(data_dir), tasks=tasks, suite=suite, protocol=protocol, tasks_dir=tasks_dir,
                  include_paths=include_path, hub_dir=hub_dir, force=force)


# ---------------------------------------------------------------- tasks
@tasks_app.command("list")
def tasks_list(tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP)) -> None:
    """List tasks and suites."""
    from rzero_bench.tasks import list_command

    list_command(tasks_dir=tasks_dir)


@tasks_app.command("validate")
def tasks_validate(
    paths: list[Path] = typer.Argument(None, help="Task YAML files (default: all shipped tasks)."),
    tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP + " When given, templates are rendered on real rows."),
) -> None:
    """Validate task YAML strictly (unknown keys, !function, include, template fields)."""
    from rzero_bench.tasks import validate_command

    validate_command(paths=paths or [], tasks_dir=tasks_dir, data_dir=_data_dir(data_dir))


@tasks_app.command("inspect")
def tasks_inspect(
    name: str = typer.Argument(..., help="Task name (see `rzero-bench tasks list`)."),
    n: int = typer.Option(2, "--n", min=1, help="How many items to show, from the start of the dataset."),
    tasks_dir: Path | None = typer.Option(None, "--tasks-dir", help=TASKS_DIR_HELP),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
) -> None:
    """Print the system prompt and the rendered prompt, choices and target of a task's first items."""
    from rzero_bench.tasks import inspect_command

    inspect_command(name, n=n, tasks_dir=tasks_dir, data_dir=_data_dir(data_dir))


# ---------------------------------------------------------------- tiny / micro
@tiny_app.command("build")
def tiny_build(
    size: str = typer.Option("s", "--size", help="xs (~0.2M params) | s (~4M) | m (~25M)."),
    sample: bool = typer.Option(False, "--sample", help="Print a seeded sample generation afterwards."),
) -> None:
    """Build (or reuse from the cache) the tiny tokenizer + Qwen3 model; prints its path."""
    from rzero_bench.training.tiny import tiny_build_command

    tiny_build_command(size=size, sample=sample)


@micro_app.command("pretrain")
def micro_pretrain(
    size: str = typer.Option("s", "--size", help="Model size for the micro base."),
    seed: int = typer.Option(0, "--seed"),
    minutes: float | None = typer.Option(None, "--minutes", help="Override the pretraining budget (nominal "
                                         "minutes at 12.5k tokens/s; default 9.5). Same as --model micro:s@<minutes>."),
    budget: str | None = typer.Option(None, "--budget", help="A named recipe instead: 'demo' (half-size batches, "
                                      "~61 percent of the default's compute; make demo's base). Same as micro:s@demo."),
) -> None:
    """Pretrain (cached) the micro base model on generated arithmetic worked solutions."""
    from rzero_bench.micro import pretrain_command

    pretrain_command(size=size, seed=seed, minutes=minutes, budget=budget)


def main() -> None:
    """Console entry point: one-line errors, exit 2 for bad input, 1 for failures."""
    try:
        app()
    except RZeroError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as e:
        import errno

        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" while writing {e.filename}" if e.filename else ""
            typer.echo(f"error: disk full{where}; free space and rerun the same command to resume "
                       "(finished stages are kept)", err=True)
            sys.exit(2)
        typer.echo(f"error: {e.__class__.__name__}: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
