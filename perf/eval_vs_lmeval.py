"""Our `eval` vs lm-eval's `simple_evaluate` on the same model, items, prompt and greedy decoding.

Two comparisons (``--tasks gsm8k,micro_arith``, both by default):

- ``gsm8k``: the ~4M tiny model (``build_tiny``), the first N GSM8K items of the local mirror. Both
  harnesses score 0 here, so this compares speed and generations, not grading.
- ``micro_arith``: the micro base (``micro:s``, cached under $RZERO_HOME), which scores well above
  zero, on the held-out micro_arith items exported as a JSON dataset. Here per-item correctness is
  compared: every item the two harnesses grade differently is listed with both generations, both
  extracted answers and the reason (different generation, or same generation graded differently).

Same prompt in both: system "Please reason step by step, ..." + the question through the
tokenizer's chat template (lm-eval: ``apply_chat_template=True, system_instruction=...``), greedy
decoding, the same token budget and batch size. lm-eval gets a task YAML with ``dataset_path: json``
pointing at a temp JSONL of the items. Scores are each harness's own metric: ours math-verify on
the last \\boxed{}; lm-eval exact match of the last \\boxed{} content after its regex filter
(flat braces only). Wall time = model load + generation + scoring, after torch/transformers/lm_eval
are imported; min over ``--rounds`` alternating rounds.

Run: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RZERO_DATA_DIR=../shared/benchmarks \\
     .venv/bin/python perf/eval_vs_lmeval.py [--tasks gsm8k,micro_arith] [--n 100] [--micro-n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT

BOXED_FILTER = [
    "filter_list:",
    "  - name: boxed",
    "    filter:",
    "      - function: regex",
    "        regex_pattern: '\\\\boxed\\{([^{}]*)\\}'",
    "        group_select: -1",
    "      - function: take_first",
    "metric_list:",
    "  - metric: exact_match",
    "    aggregation: mean",
    "    higher_is_better: true",
]


def lmeval_yaml(name: str, jsonl: Path, target: str, max_tokens: int) -> str:
    """An lm-eval task over a local JSONL: greedy, no stop strings, last \\boxed{} vs the target."""
    return "\n".join(
        [
            f"task: {name}",
            "dataset_path: json",
            f"dataset_kwargs: {{data_files: {{test: {json.dumps(str(jsonl))}}}}}",
            "test_split: test",
            "output_type: generate_until",
            'doc_to_text: "{{question}}"',
            f"doc_to_target: {json.dumps(target)}",
            "target_delimiter: ''",
            "generation_kwargs:",
            "  until: []",
            "  do_sample: false",
            "  temperature: 0.0",
            f"  max_gen_toks: {max_tokens}",
            *BOXED_FILTER,
            "metadata:",
            "  version: 1.0",
            "",
        ]
    )


def compare(task: str, model: Path, items: list[dict[str, Any]], target: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run both harnesses on ``items`` (rows of the task's dataset) and compare them item by item."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from rzero_bench.backends import make_generator
    from rzero_bench.evaluate import evaluate, extract_answer
    from rzero_bench.grading import grade_many
    from rzero_bench.tasks import load_task

    spec = load_task(task)
    max_tokens = args.max_tokens or spec.generation_kwargs.max_gen_toks
    lm_name = f"rzero_{task}_perf"
    with tempfile.TemporaryDirectory(prefix="rzero-perf-") as tmp:
        tmpd = Path(tmp)
        data = tmpd / "data" / task
        data.mkdir(parents=True)
        jsonl = data / "test.jsonl"
        jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
        if spec.metadata.processor == "generated":  # the same items, read from the exported file
            spec = spec.model_copy(update={"metadata": spec.metadata.model_copy(
                update={"processor": "jsonl", "local_file": f"{task}/test.jsonl", "generator": None,
                        "generator_kwargs": {}})})
        (tmpd / "lmeval_tasks").mkdir()
        (tmpd / "lmeval_tasks" / f"{lm_name}.yaml").write_text(lmeval_yaml(lm_name, jsonl, target, max_tokens),
                                                               encoding="utf-8")

        def run_ours() -> tuple[Any, float]:
            t0 = time.perf_counter()
            with make_generator("hf", str(model), batch_size=args.batch_size) as gen:
                r = evaluate(gen, [spec], tmpd / "ours", data_dir=tmpd / "data", max_tokens=max_tokens,
                             progress=False)[task]
            return r, time.perf_counter() - t0

        def run_lm() -> tuple[Any, float]:
            t0 = time.perf_counter()
            o = simple_evaluate(
                model="hf",
                model_args=f"pretrained={model},dtype=float32",
                tasks=[lm_name],
                task_manager=TaskManager(include_path=str(tmpd / "lmeval_tasks")),
                batch_size=args.batch_size,
                device="cpu",
                apply_chat_template=True,
                system_instruction=SOLVER_SYSTEM_PROMPT,
                log_samples=True,
            )
            return o, time.perf_counter() - t0

        ours_times: list[float] = []
        lm_times: list[float] = []
        for _ in range(args.rounds):  # alternate, so background load hits both alike
            ours, t = run_ours()
            ours_times.append(t)
            out, t = run_lm()
            lm_times.append(t)
        our_rows = [json.loads(x) for x in (tmpd / "ours" / f"{task}.samples.jsonl").read_text().splitlines()]

    res = out["results"][lm_name]
    lm_score = float(next(v for k, v in res.items() if k.startswith("exact_match") and "stderr" not in k))
    samples = sorted(out["samples"][lm_name], key=lambda s: s["doc_id"])
    lm_texts = [s["resps"][0][0] for s in samples]
    lm_answers = [s["filtered_resps"][0] for s in samples]
    lm_correct = [bool(s["exact_match"]) for s in samples]
    our_texts = [r["completions"][0] for r in our_rows]
    our_correct = [bool(r["correct"][0]) for r in our_rows]
    refs = [r["reference"] for r in our_rows]
    identical = sum(a.strip() == b.strip() for a, b in zip(our_texts, lm_texts, strict=True))
    regraded = grade_many(refs, [extract_answer(t, "math") for t in lm_texts], kind="math")
    diffs = []
    for i, (oc, lc) in enumerate(zip(our_correct, lm_correct, strict=True)):
        if oc == lc:
            continue
        same = our_texts[i].strip() == lm_texts[i].strip()
        why = ("same generation, graded differently: " + (
            "math-verify accepts an equivalent form that exact match rejects" if oc else
            "exact match accepts what math-verify rejects") if same else "different generations")
        diffs.append({"item": our_rows[i]["doc_id"], "reference": refs[i], "ours_correct": oc, "lmeval_correct": lc,
                      "ours_answer": our_rows[i]["answers"][0], "lmeval_answer": lm_answers[i], "why": why,
                      "ours_text": our_texts[i][:160], "lmeval_text": lm_texts[i][:160]})
    return {
        "task": task, "n": len(items), "model": model.name, "max_tokens": max_tokens,
        "ours_score": ours.metrics["acc"]["value"], "lm_score": lm_score,
        "lm_regraded": sum(1 for v in regraded if v.correct) / len(regraded),
        "identical": identical, "ours_time": min(ours_times), "lm_time": min(lm_times),
        "ours_times": ours_times, "lm_times": lm_times, "same_correctness": len(items) - len(diffs), "diffs": diffs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="gsm8k,micro_arith")
    ap.add_argument("--n", type=int, default=100, help="GSM8K items")
    ap.add_argument("--micro-n", type=int, default=1000, help="micro_arith items (1000 = all)")
    ap.add_argument("--max-tokens", type=int, default=None, help="default: 64 for gsm8k, the task's own for micro")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--size", default="s")
    ap.add_argument("--rounds", type=int, default=2, help="alternate the two harnesses this many times; min time")
    ap.add_argument("--data-dir", default=os.environ.get("RZERO_DATA_DIR", "../shared/benchmarks"))
    ap.add_argument("--json", type=Path, default=None, help="also write the comparison (with every difference) here")
    args = ap.parse_args()

    import lm_eval  # noqa: F401 - imported before timing
    import torch  # noqa: F401
    import transformers  # noqa: F401

    reports = []
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        if task == "gsm8k":
            from rzero_bench.training.tiny import build_tiny

            src = Path(args.data_dir) / "gsm8k" / "test.jsonl"
            items = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()[: args.n]]
            gsm_args = argparse.Namespace(**{**vars(args), "max_tokens": args.max_tokens or 64})
            reports.append(compare("gsm8k", build_tiny(args.size), items, "{{answer.split('####')[-1].strip()}}",
                                   gsm_args))
        elif task == "micro_arith":
            from rzero_bench.micro import pretrain_micro
            from rzero_bench.micro.arith import micro_arith_docs

            docs = micro_arith_docs()[: args.micro_n]
            items = [{k: v for k, v in d.items() if not str(k).startswith("_")} for d in docs]
            reports.append(compare("micro_arith", pretrain_micro(args.size, seed=0), items, "{{answer}}", args))
        else:
            raise SystemExit(f"unknown task {task!r}: gsm8k or micro_arith")

    print("\n| task | model | items | harness | score (own metric) | score (our grader) | identical generations |"
          " same correctness | wall time s | time ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        print(f"| {r['task']} | {r['model']} | {r['n']} | rzero-bench eval | {100 * r['ours_score']:.2f} |"
              f" {100 * r['ours_score']:.2f} | {r['identical']}/{r['n']} | {r['same_correctness']}/{r['n']} |"
              f" {r['ours_time']:.1f} | {r['ours_time'] / r['lm_time']:.2f}x |")
        print(f"| {r['task']} | {r['model']} | {r['n']} | lm-eval {lm_eval.__version__} simple_evaluate |"
              f" {100 * r['lm_score']:.2f} | {100 * r['lm_regraded']:.2f} | {r['identical']}/{r['n']} |"
              f" {r['same_correctness']}/{r['n']} | {r['lm_time']:.1f} | 1.00x |")
    for r in reports:
        print(f"\n{r['task']}: greedy, max {r['max_tokens']} tokens, batch {args.batch_size}, CPU; wall times ours"
              f" {[round(t, 1) for t in r['ours_times']]}, lm-eval {[round(t, 1) for t in r['lm_times']]}")
        if not r["diffs"]:
            print(f"{r['task']}: per-item correctness identical on all {r['n']} items")
        for d in r["diffs"]:
            print(f"  item {d['item']} (reference {d['reference']!r}): ours {'right' if d['ours_correct'] else 'wrong'}"
                  f" ({d['ours_answer']!r}), lm-eval {'right' if d['lmeval_correct'] else 'wrong'}"
                  f" ({d['lmeval_answer']!r}): {d['why']}")
            if d["why"] == "different generations":
                print(f"    ours:    {d['ours_text']!r}\n    lm-eval: {d['lmeval_text']!r}")
    if args.json is not None:
        args.json.write_text(json.dumps(reports, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
