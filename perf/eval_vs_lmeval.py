"""Our `eval` vs lm-eval's `simple_evaluate` on the same model, items, prompt and greedy decoding.

Same ~4M tiny model (``build_tiny("s")``), the same N GSM8K items (first N of the local mirror),
the same chat prompt (system "Please reason step by step, ..." + the question, through the
tokenizer's chat template), greedy decoding with the same token budget and batch size.
lm-eval gets a task YAML with ``dataset_path: json`` pointing at a temp JSONL of the items.

Reported side by side: score (each harness's own metric: ours math-verify on the last \\boxed{};
lm-eval exact match of the last \\boxed{} content after its regex filter), lm-eval's generations
re-graded by our grader, how many generations are identical, and wall time (model load +
generation + scoring, measured after torch/transformers/lm_eval are imported).

Run: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RZERO_DATA_DIR=../shared/benchmarks \
     .venv/bin/python perf/eval_vs_lmeval.py [--n 100] [--max-tokens 64] [--batch-size 16]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--size", default="s")
    ap.add_argument("--rounds", type=int, default=2, help="alternate the two harnesses this many times; min time")
    ap.add_argument("--data-dir", default=os.environ.get("RZERO_DATA_DIR", "../shared/benchmarks"))
    args = ap.parse_args()

    import lm_eval  # noqa: F401 - imported before timing
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from rzero_bench.backends import make_generator
    from rzero_bench.evaluate import evaluate, extract_answer
    from rzero_bench.grading import grade_many
    from rzero_bench.tasks import load_task
    from rzero_bench.training.tiny import build_tiny

    model = build_tiny(args.size)
    src = Path(args.data_dir) / "gsm8k" / "test.jsonl"
    items = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()[: args.n]]

    with tempfile.TemporaryDirectory(prefix="rzero-perf-") as tmp:
        tmpd = Path(tmp)
        (tmpd / "data" / "gsm8k").mkdir(parents=True)
        jsonl = tmpd / "data" / "gsm8k" / "test.jsonl"
        jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")

        # ---------------------------------------------------------------- ours
        spec = load_task("gsm8k")

        def run_ours() -> tuple[Any, float]:
            t0 = time.perf_counter()
            with make_generator("hf", str(model), batch_size=args.batch_size) as gen:
                r = evaluate(gen, [spec], tmpd / "ours", data_dir=tmpd / "data", max_tokens=args.max_tokens,
                             progress=False)["gsm8k"]
            return r, time.perf_counter() - t0

        # ---------------------------------------------------------------- lm-eval
        tdir = tmpd / "lmeval_tasks"
        tdir.mkdir()
        (tdir / "rzero_gsm8k_perf.yaml").write_text(
            "\n".join(
                [
                    "task: rzero_gsm8k_perf",
                    "dataset_path: json",
                    f"dataset_kwargs: {{data_files: {{test: {json.dumps(str(jsonl))}}}}}",
                    "test_split: test",
                    "output_type: generate_until",
                    'doc_to_text: "{{question}}"',
                    "doc_to_target: \"{{answer.split('####')[-1].strip()}}\"",
                    "target_delimiter: ''",
                    "generation_kwargs:",
                    "  until: []",
                    "  do_sample: false",
                    "  temperature: 0.0",
                    f"  max_gen_toks: {args.max_tokens}",
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
                    "metadata:",
                    "  version: 1.0",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        def run_lm() -> tuple[Any, float]:
            t0 = time.perf_counter()
            o = simple_evaluate(
                model="hf",
                model_args=f"pretrained={model},dtype=float32",
                tasks=["rzero_gsm8k_perf"],
                task_manager=TaskManager(include_path=str(tdir)),
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
        ours_time, lm_time = min(ours_times), min(lm_times)
        our_rows = [json.loads(x) for x in (tmpd / "ours" / "gsm8k.samples.jsonl").read_text().splitlines()]

    res = out["results"]["rzero_gsm8k_perf"]
    lm_score = float(next(v for k, v in res.items() if k.startswith("exact_match") and "stderr" not in k))
    samples = sorted(out["samples"]["rzero_gsm8k_perf"], key=lambda s: s["doc_id"])
    lm_texts = [s["resps"][0][0] for s in samples]
    our_texts = [r["completions"][0] for r in our_rows]
    identical = sum(a.strip() == b.strip() for a, b in zip(our_texts, lm_texts, strict=True))
    refs = [r["reference"] for r in our_rows]
    regraded = grade_many(refs, [extract_answer(t, "math") for t in lm_texts], kind="math")
    lm_regraded = sum(1 for v in regraded if v.correct) / len(regraded)
    our_score = ours.metrics["acc"]["value"]

    print(f"\n{len(items)} GSM8K items, tiny-{args.size} model {model.name}, greedy, max {args.max_tokens} tokens,"
          f" batch {args.batch_size}, chat template + system prompt, CPU; wall time = min over {args.rounds} alternating"
          f" rounds (ours {[round(t, 1) for t in ours_times]}, lm-eval {[round(t, 1) for t in lm_times]})\n")
    print("| harness | score (own metric) | score (our grader) | identical generations | wall time s | time ratio |")
    print("|---|---|---|---|---|---|")
    print(f"| rzero-bench eval | {100 * our_score:.2f} | {100 * our_score:.2f} | {identical}/{len(items)} |"
          f" {ours_time:.1f} | {ours_time / lm_time:.2f}x |")
    print(f"| lm-eval 0.4.13 simple_evaluate | {100 * lm_score:.2f} | {100 * lm_regraded:.2f} | {identical}/{len(items)} |"
          f" {lm_time:.1f} | 1.00x |")
    diff = [i for i, (a, b) in enumerate(zip(our_texts, lm_texts, strict=True)) if a.strip() != b.strip()]
    if diff:
        i = diff[0]
        print(f"\nfirst differing generation (item {i}):\n  ours:    {our_texts[i][:200]!r}\n  lm-eval: {lm_texts[i][:200]!r}")


if __name__ == "__main__":
    main()
