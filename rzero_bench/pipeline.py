"""The R-Zero co-evolution loop (arXiv 2508.05004, section 3), as resumable stages.

Iteration k starts from challenger_{k-1} and solver_{k-1} (both the base model at k = 1):

1. ``challenger``  GRPO on the challenger; reward = uncertainty of solver_{k-1} on each generated
   question (m samples, majority agreement p̂) minus the BLEU-cluster repetition penalty, gated on format.
2. ``questions``   N candidate questions sampled from challenger_k.
3. ``votes``       solver_{k-1} answers each question m times; the majority answer is the pseudo-label.
4. ``filter``      keep questions whose p̂ lies in the informative band; every drop is counted.
5. ``solver``      GRPO on solver_{k-1} against the pseudo-labels → solver_k.
6. ``label_acc``   pseudo-label accuracy against an oracle (when the config names one).
7. ``eval``        solver_k on the benchmark suite → ``results/iter_k``. The base model is ``iter_0``.

Stages 1 and 3 share the self-consistency code (:func:`self_consistency`). Every stage writes its
outputs atomically and is marked done in ``manifest.json`` only afterwards, so a killed run resumes
at the first unfinished stage and never reruns a finished one.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rzero_bench.config import RunConfig, config_hash, load_config
from rzero_bench.errors import TrainingError, UserError
from rzero_bench.prompts import challenger_messages, load_prompt, solver_messages
from rzero_bench.records import Attempt, GenerationRequest, Question, SamplingParams, Vote
from rzero_bench.store import (
    RunLock,
    RunStore,
    atomic_write_json,
    atomic_write_jsonl,
    read_json,
    read_jsonl,
)

STAGES = ("challenger", "questions", "votes", "filter", "solver", "label_acc", "eval")


def stage_seed(base: int, iteration: int, stage: str) -> int:
    """A distinct, reproducible seed per (run seed, iteration, stage)."""
    h = hashlib.sha256(f"{base}:{iteration}:{stage}".encode()).hexdigest()
    return int(h[:8], 16)


# --------------------------------------------------------------------------- model resolution
def check_model_spec(spec: str) -> None:
    """Cheap validation of a model spec before any work starts (a bad path fails in milliseconds)."""
    if spec.startswith(("tiny:", "micro:")):
        kind, _, rest = spec.partition(":")
        size = rest.partition("@")[0]
        if not size:
            raise UserError(f"bad model spec {spec!r}: expected {kind}:<size>")
        return
    p = Path(spec).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise UserError(f"model path {p} has no config.json; point --model at a save_pretrained directory")
    elif spec.startswith((".", "/", "~")):
        raise UserError(f"model path not found: {spec}")


def resolve_model(spec: str, *, seed: int = 0) -> str:
    """Turn a model spec into something ``from_pretrained`` accepts.

    ``tiny:<size>`` builds (or reuses) the offline random-init tiny model; ``micro:<size>[@<minutes>]``
    the briefly pretrained micro base (arithmetic worked solutions and challenger-format examples); an existing path is used as is; anything else is passed on as a hub id.
    """
    if spec.startswith("tiny:"):
        from rzero_bench.training.tiny import build_tiny

        return str(build_tiny(spec.split(":", 1)[1]))
    if spec.startswith("micro:"):
        from rzero_bench.micro.pretrain import pretrain_micro

        size, _, minutes = spec.split(":", 1)[1].partition("@")
        try:
            budget = float(minutes) if minutes else None
        except ValueError:
            raise UserError(f"bad model spec {spec!r}: expected micro:<size>[@<minutes>]") from None
        return str(pretrain_micro(size, seed=seed, minutes=budget))
    check_model_spec(spec)
    p = Path(spec).expanduser()
    return str(p.resolve()) if p.exists() else spec


# --------------------------------------------------------------------------- shared self-consistency
def self_consistency(
    generator: Any,
    questions: Sequence[Question],
    *,
    solver_prompt: dict[str, str],
    m: int,
    temperature: float,
    max_tokens: int,
    seed: int,
    kind: str = "math",
    none_is_answer: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Attempt], list[Vote], int]:
    """Sample the solver m times per question and vote. Returns (attempts, votes, tokens generated).

    This is the one implementation used both for the challenger's reward signal and for building
    the solver's dataset.
    """
    from rzero_bench.parsing import last_boxed
    from rzero_bench.selfplay.voting import vote

    requests = [
        GenerationRequest(
            messages=tuple(solver_messages(solver_prompt, q.text)),
            params=SamplingParams(n=m, temperature=temperature, top_p=1.0, max_tokens=max_tokens,
                                  seed=(seed + i) % (2**31)),
            id=q.id,
        )
        for i, q in enumerate(questions)
    ]
    gens = generator.generate(requests, progress=progress) if requests else []
    attempts: list[Attempt] = []
    votes: list[Vote] = []
    tokens = 0
    for q, g in zip(questions, gens, strict=True):
        answers = []
        for j, text in enumerate(g.texts):
            ans = last_boxed(text)
            ntok = g.completion_tokens[j] if j < len(g.completion_tokens) else 0
            tokens += ntok
            fr = g.finish_reasons[j] if j < len(g.finish_reasons) else "stop"
            attempts.append(Attempt(question_id=q.id, index=j, completion=text, answer=ans, finish_reason=fr, tokens=ntok))
            answers.append(ans)
        votes.append(vote(q.id, answers, kind=kind, none_is_answer=none_is_answer))
    return attempts, votes, tokens


# --------------------------------------------------------------------------- the runner
@dataclass
class Paths:
    root: Path
    k: int

    @property
    def it(self) -> Path:
        return self.root / f"iter_{self.k}"

    def rel(self, p: Path) -> str:
        return str(p.relative_to(self.root))


class Pipeline:
    """Runs (or resumes) the configured number of iterations in one run directory."""

    def __init__(self, cfg: RunConfig, run_dir: Path, *, data_dir: Path | None = None, console: Any = None,
                 quiet: bool = False) -> None:
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.data_dir = data_dir
        self.store = RunStore(self.dir)
        self.quiet = quiet
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, quiet=quiet)
        self.console = console
        self.prompts = {role: load_prompt(name) for role, name in cfg.prompts.items()}
        check_model_spec(cfg.model)
        self._base_model: str | None = None

    # ---- helpers
    def log(self, msg: str) -> None:
        self.console.print(msg)

    @property
    def base_model(self) -> str:
        if self._base_model is None:
            self._base_model = resolve_model(self.cfg.model, seed=self.cfg.seed)
        return self._base_model

    def model_for(self, role: str, k: int) -> str:
        """Checkpoint of ``role`` after iteration k (k = 0: the base model)."""
        if k == 0:
            return self.base_model
        return str(self.dir / f"iter_{k}" / role)

    def generator(self, model_path: str, *, role: str = "solver") -> Any:
        from rzero_bench.backends import make_generator

        lay = self.cfg.layout
        if lay.generation_backend == "openai":
            if not lay.solver_server_url:
                raise UserError("layout.generation_backend is openai but layout.solver_server_url is not set")
            return make_generator("openai", model_path, base_url=lay.solver_server_url, api_key_env=lay.api_key_env)
        if lay.generation_backend == "served":
            return make_generator("served", model_path, command=lay.serve_command, gpus=lay.serve_gpus,
                                  api_key_env=lay.api_key_env)
        if lay.generation_backend == "vllm":
            return make_generator("vllm", model_path, gpu_memory_utilization=lay.gpu_memory_utilization)
        return make_generator("hf", model_path, batch_size=self.cfg.eval.batch_size, threads=lay.cpu_threads)

    def _progress(self, description: str, total: int) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        return Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=self.console, transient=True, disable=self.quiet)

    # ---- entry point
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        _quiet_libraries()
        with RunLock(self.dir):
            resumed = self.store.open(
                config=cfg.model_dump(mode="json"),
                config_hash=config_hash(cfg),
                seeds={"run": cfg.seed},
                extra={"layout": cfg.layout.model_dump(mode="json"), "model_spec": cfg.model},
            )
            self.log(f"[bold]rzero-bench run[/] {cfg.name} → {self.dir}" + ("  (resuming)" if resumed else ""))
            self.store.manifest["config"]["iterations"] = cfg.iterations  # extending a run is allowed
            self.store.manifest["finished"] = False
            self.store.manifest["base_model"] = self.base_model
            self.store.save()
            self._stage(0, "eval", self.stage_eval)
            for k in range(1, cfg.iterations + 1):
                for name in STAGES:
                    if name == "label_acc" and not cfg.oracle:
                        continue
                    self._stage(k, name, getattr(self, f"stage_{name}"))
            self.store.manifest["finished"] = True
            self.store.save()
        return self.store.manifest

    def _stage(self, k: int, name: str, fn: Callable[[Paths], dict[str, Any]]) -> None:
        key = f"iter_{k}/{name}"
        if self.store.is_done(key):
            self.log(f"  [dim]✓ {key} (done earlier, skipped)[/]")
            return
        paths = Paths(self.dir, k)
        paths.it.mkdir(parents=True, exist_ok=True)
        self.store.start(key)
        t0 = time.monotonic()
        self.log(f"[cyan]▶ {key}[/]")
        info = fn(paths)
        outputs = info.pop("outputs")
        self.store.finish(key, outputs=outputs, wall_time_s=time.monotonic() - t0, **info)
        self.log(f"  [green]✓ {key}[/] {time.monotonic() - t0:.1f}s " + _brief(info))

    # ---- stages
    def stage_challenger(self, p: Paths) -> dict[str, Any]:
        cfg = self.cfg
        out = p.it / "challenger"
        log_path = p.it / "challenger_rewards.jsonl"
        _remove(out)
        _remove(log_path)
        solver_path = self.model_for("solver", p.k - 1)
        settings = role_settings(cfg, "challenger", stage_seed(cfg.seed, p.k, "challenger"))
        common = {"model_path": self.model_for("challenger", p.k - 1), "out_dir": out, "settings": settings,
                  "solver_prompt": self.prompts["solver"], "challenger_prompt": self.prompts["challenger"],
                  "m": cfg.selfplay.m, "reward_options": reward_options(cfg), "log_path": log_path}
        stats: Any
        if cfg.layout.accelerate_config and cfg.layout.generation_backend == "served":
            with self.generator(solver_path) as served:
                spec = {"backend": "openai", "model": "solver",
                        "options": {"base_url": f"http://127.0.0.1:{served.port}/v1", "api_key_env": cfg.layout.api_key_env}}
                stats = self._launch("challenger", p, common, solver_backend=spec)
        elif cfg.layout.accelerate_config:
            stats = self._launch("challenger", p, common, solver_backend=self._solver_backend_spec(solver_path))
        else:
            from rzero_bench.training.grpo import train_challenger

            with self.generator(solver_path) as solver:
                stats = train_challenger(solver=solver, progress=self._train_progress("challenger GRPO"), **common)
        return {"outputs": [p.rel(out), p.rel(log_path)], **_stats_dict(stats),
                "inputs": {"challenger": str(common["model_path"]), "solver": solver_path}}

    def stage_questions(self, p: Paths) -> dict[str, Any]:
        from rzero_bench.parsing import extract_question, last_boxed

        cfg = self.cfg
        sp = cfg.selfplay
        seed = stage_seed(cfg.seed, p.k, "questions")
        per_req = min(8, sp.num_questions)
        nreq = -(-sp.num_questions // per_req)
        msgs = tuple(challenger_messages(self.prompts["challenger"]))
        requests = [
            GenerationRequest(messages=msgs, id=f"c{i}",
                              params=SamplingParams(n=min(per_req, sp.num_questions - i * per_req),
                                                    temperature=sp.question_temperature, top_p=1.0,
                                                    max_tokens=sp.question_max_tokens, seed=(seed + i) % (2**31)))
            for i in range(nreq)
        ]
        tokens = 0
        with self.generator(str(p.it / "challenger"), role="challenger") as gen, self._progress("questions", nreq) as prog:
            task = prog.add_task(f"questions from challenger_{p.k}", total=nreq)
            gens = gen.generate(requests, progress=lambda n: prog.advance(task, n))
        questions: list[Question] = []
        malformed = 0
        for g in gens:
            for j, text in enumerate(g.texts):
                tokens += g.completion_tokens[j] if j < len(g.completion_tokens) else 0
                q = extract_question(text)
                if q is None or not q.strip():
                    malformed += 1
                    continue
                questions.append(Question(id=f"it{p.k}-q{len(questions) + malformed:05d}", text=q.strip(),
                                          challenger_answer=last_boxed(text.split("</question>")[-1]),
                                          iteration=p.k, raw=text[:4000]))
        probes = self._probes(p.k)
        out = p.it / "questions.jsonl"
        atomic_write_jsonl(out, [q.to_dict() for q in questions + probes])
        return {"outputs": [p.rel(out)], "generated": sp.num_questions, "well_formed": len(questions),
                "malformed": malformed, "probes": len(probes), "tokens": tokens}

    def stage_votes(self, p: Paths) -> dict[str, Any]:
        cfg = self.cfg
        sp = cfg.selfplay
        questions = [Question.from_dict(d) for d in read_jsonl(p.it / "questions.jsonl")]
        solver_path = self.model_for("solver", p.k - 1)
        with self.generator(solver_path) as gen, self._progress("votes", len(questions)) as prog:
            task = prog.add_task(f"solver_{p.k - 1} × {sp.m} samples", total=len(questions))
            attempts, votes, tokens = self_consistency(
                gen, questions, solver_prompt=self.prompts["solver"], m=sp.m, temperature=sp.solver_temperature,
                max_tokens=sp.solver_max_tokens, seed=stage_seed(cfg.seed, p.k, "votes"), kind=sp.grader,
                none_is_answer=sp.none_is_answer, progress=lambda n: prog.advance(task, n))
        a_path, v_path = p.it / "attempts.jsonl", p.it / "votes.jsonl"
        atomic_write_jsonl(a_path, [a.to_dict() for a in attempts])
        atomic_write_jsonl(v_path, [v.to_dict() for v in votes])
        answered = sum(1 for a in attempts if a.answer is not None)
        return {"outputs": [p.rel(a_path), p.rel(v_path)], "questions": len(questions), "tokens": tokens,
                "no_answer_rate": round(1 - answered / len(attempts), 4) if attempts else None}

    def stage_filter(self, p: Paths) -> dict[str, Any]:
        from rzero_bench.selfplay.filtering import filter_questions

        sp = self.cfg.selfplay
        questions = [Question.from_dict(d) for d in read_jsonl(p.it / "questions.jsonl")]
        votes = {v["question_id"]: Vote.from_dict(v) for v in read_jsonl(p.it / "votes.jsonl")}
        trainable = [q for q in questions if q.source == "challenger"]
        if sp.answer_match_gate:
            trainable, gated = _answer_match_gate(trainable, votes, sp.grader)
        else:
            gated = 0
        kept, drops = filter_questions(
            trainable, [votes[q.id] for q in trainable], mode=sp.filter_mode, delta=sp.delta, band=sp.band, dedup=sp.dedup)
        if gated:
            drops["answer_mismatch"] = gated
        q_info = self.store.manifest["stages"].get(f"iter_{p.k}/questions", {})
        rows = [{"question_id": q.id, "question": q.text, "label": v.label, "p_hat": v.p_hat} for q, v in kept]
        if self.cfg.controls.shuffle_labels and len(rows) > 1:
            import random

            labels = [r["label"] for r in rows]
            random.Random(stage_seed(self.cfg.seed, p.k, "shuffle")).shuffle(labels)
            for r, lab in zip(rows, labels, strict=True):
                r["label_unshuffled"], r["label"] = r["label"], lab
        ds_path, f_path = p.it / "solver_dataset.jsonl", p.it / "filter.json"
        atomic_write_jsonl(ds_path, rows)
        summary = {"generated": q_info.get("generated", len(trainable)), "malformed": q_info.get("malformed", 0),
                   "candidates": len(trainable), "kept": len(kept), "drops": drops,
                   "mode": sp.filter_mode, "delta": sp.delta, "band": list(sp.band)}
        atomic_write_json(f_path, summary)
        return {"outputs": [p.rel(ds_path), p.rel(f_path)], "kept": len(kept), "candidates": len(trainable),
                "drops": drops}

    def stage_solver(self, p: Paths) -> dict[str, Any]:
        from rzero_bench.training.grpo import train_solver

        cfg = self.cfg
        dataset = read_jsonl(p.it / "solver_dataset.jsonl")
        if len(dataset) < cfg.selfplay.min_kept:
            f = read_json(p.it / "filter.json")
            raise TrainingError(
                f"iteration {p.k}: only {len(dataset)} question(s) survived the filter (need >= {cfg.selfplay.min_kept}; "
                f"generated {f.get('generated')}, malformed {f.get('malformed')}, drops {f.get('drops')}); "
                "generate more questions (selfplay.num_questions) or widen the band")
        out = p.it / "solver"
        _remove(out)
        settings = role_settings(cfg, "solver", stage_seed(cfg.seed, p.k, "solver"))
        common = {"model_path": self.model_for("solver", p.k - 1), "out_dir": out, "settings": settings,
                  "solver_prompt": self.prompts["solver"],
                  "reward_options": {"format_weight": cfg.solver.format_weight, "kind": cfg.selfplay.grader}}
        stats: Any
        if cfg.layout.accelerate_config:
            stats = self._launch("solver", p, common, dataset_path=str(p.it / "solver_dataset.jsonl"))
        else:
            stats = train_solver(dataset=dataset, progress=self._train_progress("solver GRPO"), **common)
        return {"outputs": [p.rel(out)], "examples": len(dataset), **_stats_dict(stats)}

    def stage_label_acc(self, p: Paths) -> dict[str, Any]:
        from rzero_bench.report.label_acc import label_accuracy_for_iteration

        out = p.it / "label_accuracy.json"
        result = label_accuracy_for_iteration(p.it, self.cfg.oracle or "", data_dir=self.data_dir)
        atomic_write_json(out, result)
        overall = result.get("overall", {})
        return {"outputs": [p.rel(out)], "label_accuracy": overall.get("accuracy"), "n": overall.get("n")}

    def stage_eval(self, p: Paths) -> dict[str, Any]:
        from rzero_bench.evaluate import evaluate
        from rzero_bench.tasks import resolve_tasks

        ev = self.cfg.eval
        specs = resolve_tasks(suite=ev.suite if not ev.tasks else None, tasks=ev.tasks)
        out = self.dir / "results" / f"iter_{p.k}"
        if out.exists():
            shutil.rmtree(out)
        model = self.model_for("solver", p.k)
        with self.generator(model) as gen:
            results = evaluate(gen, specs, out, data_dir=self.data_dir, limit=ev.limit, seed=ev.seed,
                               max_tokens=ev.max_tokens, progress=not self.quiet,
                               skip_missing=not ev.tasks, max_samples=ev.max_samples)
        scores = {t: {m: v["value"] for m, v in r.metrics.items()} for t, r in results.items()}
        return {"outputs": [p.rel(out)], "scores": scores, "model": model,
                "tokens": sum(r.tokens for r in results.values())}

    # ---- pieces
    def _train_progress(self, label: str) -> Callable[[int, int, dict[str, Any]], None]:
        state: dict[str, Any] = {}

        def cb(step: int, total: int, logs: dict[str, Any]) -> None:
            if self.quiet:
                return
            if state.get("last") == step:
                return
            state["last"] = step
            reward = logs.get("reward")
            extra = f" reward={reward:.3f}" if isinstance(reward, (int, float)) else ""
            self.console.print(f"    {label}: step {step}/{total}{extra}")

        return cb

    def _solver_backend_spec(self, solver_path: str) -> dict[str, Any]:
        lay = self.cfg.layout
        if lay.generation_backend != "openai" or not lay.solver_server_url:
            raise UserError("multi-process GRPO (layout.accelerate_config) needs the solver served by `vllm serve`: "
                            "set layout.generation_backend=openai and layout.solver_server_url")
        return {"backend": "openai", "model": lay.served_solver_name or solver_path,
                "options": {"base_url": lay.solver_server_url, "api_key_env": lay.api_key_env}}

    def _launch(self, role: str, p: Paths, common: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Run a GRPO stage under ``accelerate launch`` (see rzero_bench.training.launch)."""
        from rzero_bench.training.launch import run_launched

        spec = {k: (str(v) if isinstance(v, Path) else v) for k, v in common.items()}
        spec["settings"] = common["settings"].to_dict()
        spec.update(role=role, stats_path=str(p.it / f".{role}_stats.json"), **extra)
        lay = self.cfg.layout
        gpus = lay.challenger_gpus if role == "challenger" else lay.solver_gpus
        return run_launched(spec, p.it / f".{role}_launch.json", lay.accelerate_config or "", gpus=gpus,
                            prefix=lay.launch_prefix)

    def _probes(self, k: int) -> list[Question]:
        """Probe questions with known answers for the ``reference`` oracle (never trained on).

        Drawn, with a seed per iteration, from the probe task's items that the run's evaluation
        does not use, so probing never leaks evaluation items into self-play.
        """
        pc = self.cfg.probes
        if pc.n <= 0 or self.cfg.oracle != "reference":
            return []
        import random

        from rzero_bench.tasks import DOC_ID_KEY, load_docs, resolve_tasks

        spec = resolve_tasks(tasks=[pc.task])[0]
        if spec.grader != "math":
            raise UserError(f"probes.task {pc.task!r} must be a math task (its grader is {spec.grader})")
        docs = load_docs(spec, data_dir=self.data_dir)
        ev = self.cfg.eval
        eval_names = {t.name for t in resolve_tasks(suite=ev.suite if not ev.tasks else None, tasks=ev.tasks)}
        excluded: set[str] = set()
        if spec.name in eval_names:
            excluded = {d[DOC_ID_KEY] for d in load_docs(spec, data_dir=self.data_dir, limit=ev.limit, seed=ev.seed)}
        pool = [d for d in docs if d[DOC_ID_KEY] not in excluded]
        rng = random.Random(stage_seed(pc.seed, k, "probes"))
        chosen = rng.sample(pool, min(pc.n, len(pool)))
        return [Question(id=f"it{k}-probe-{d[DOC_ID_KEY]}", text=spec.render_text(d), iteration=k,
                         source=f"probe:{spec.name}", reference=spec.render_target(d)) for d in chosen]


def _answer_match_gate(questions: list[Question], votes: dict[str, Vote], kind: str) -> tuple[list[Question], int]:
    """First official release: keep a question only when the challenger's own answer matches the majority."""
    from rzero_bench.grading import grade

    kept, dropped = [], 0
    for q in questions:
        v = votes[q.id]
        if q.challenger_answer is not None and v.label is not None:
            verdict = grade(reference=v.label, prediction=q.challenger_answer, kind=kind)  # type: ignore[arg-type]
            if verdict.correct:
                kept.append(q)
                continue
        dropped += 1
    return kept, dropped


def role_settings(cfg: RunConfig, role: str, seed: int) -> Any:
    """Map a role's config onto the trainer's plain settings object."""
    from rzero_bench.training.grpo import GRPOSettings

    rc = getattr(cfg, role)
    return GRPOSettings(
        lr=rc.lr, beta=rc.beta, num_generations=rc.num_generations, prompts_per_step=rc.prompts_per_step,
        max_steps=rc.max_steps, max_completion_length=rc.max_completion_length, temperature=rc.temperature,
        top_p=rc.top_p, loss_type=rc.loss_type, gradient_accumulation_steps=rc.gradient_accumulation_steps,
        seed=seed, use_vllm=cfg.layout.trainer_use_vllm, extra=dict(rc.extra),
    )


def reward_options(cfg: RunConfig) -> dict[str, Any]:
    sp = cfg.selfplay
    return {"variant": sp.reward_variant, "format_penalty": sp.format_penalty, "lam": sp.lam,
            "threshold": sp.bleu_threshold, "require_boxed": sp.require_boxed, "none_is_answer": sp.none_is_answer,
            "temperature": sp.solver_temperature, "max_tokens": sp.solver_max_tokens, "kind": sp.grader,
            "reward_sign": -1.0 if cfg.controls.flip_challenger_reward else 1.0}


def _stats_dict(stats: Any) -> dict[str, Any]:
    """Trainer statistics for the manifest (``train_wall_time_s`` is the trainer's own clock)."""
    if stats is None:
        return {}
    d = dict(stats.to_dict()) if hasattr(stats, "to_dict") else dict(stats)
    if "wall_time_s" in d:
        d["train_wall_time_s"] = d.pop("wall_time_s")
    if "tokens_generated" in d:
        d["tokens"] = d.pop("tokens_generated")
    return d


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


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _brief(info: dict[str, Any]) -> str:
    keys = ("kept", "candidates", "well_formed", "malformed", "steps", "tokens", "label_accuracy")
    return " ".join(f"{k}={info[k]}" for k in keys if k in info and info[k] is not None)


# --------------------------------------------------------------------------- CLI entry
def run_command(*, config: Path | None, model: str | None, iterations: int | None, preset: str | None,
                run_dir: Path | None, data_dir: Path | None, overrides: list[str]) -> None:
    cfg = load_config(config, preset=preset, model=model, iterations=iterations, overrides=overrides)
    rd = run_dir or Path("runs") / cfg.name
    pipe = Pipeline(cfg, rd, data_dir=data_dir)
    manifest = pipe.run()
    print_summary(manifest, pipe.console, rd)


def print_summary(manifest: dict[str, Any], console: Any, run_dir: Path) -> None:
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
