"""Throughput of the served path (``transformers serve`` + the openai client) vs the in-process
``hf`` backend on the same items.

Items: the first ``--items`` micro_arith questions (seeded subsample) through the solver prompt.
Workloads: greedy (one completion per item, the eval stage) and sampled (``--m`` completions per
item at temperature 1, the votes stage). In process: ``HFGenerator`` (batch ``--batch-size``, one
torch thread). Served: ``ServedGenerator(engine="transformers", threads=1)`` (one torch thread, as the run uses) at each client concurrency of
``--concurrency``; its start-up (process start to ``/health``) is reported apart. Tokens/s counts
completion tokens as each backend reports them. For greedy rows the table also gives the share of
items whose served text equals the in-process text (the same model, prompt and chat template).

Run: HF_HUB_OFFLINE=1 RZERO_HOME=/tmp/rzhome .venv/bin/python perf/served_throughput.py \\
     --model /tmp/rzhome/models/<micro model> [--items 16] [--m 4] [--concurrency 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any


def _requests(items: int, m: int, max_tokens: int, greedy: bool) -> list[Any]:
    from rzero_bench.prompts import load_prompt, solver_messages
    from rzero_bench.records import GenerationRequest, SamplingParams
    from rzero_bench.tasks import load_docs, resolve_tasks

    spec = resolve_tasks(tasks=["micro_arith"])[0]
    docs = load_docs(spec, limit=items, seed=0)
    prompt = load_prompt("solver")
    params = (SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens) if greedy
              else SamplingParams(n=m, temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=1234))
    return [GenerationRequest(messages=tuple(solver_messages(prompt, spec.render_text(d))), params=params,
                              id=f"q{i}") for i, d in enumerate(docs)]


def _timed(gen: Any, reqs: list[Any]) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    out = gen.generate(reqs)
    return time.perf_counter() - t0, out


def _row(name: str, wall: float, out: list[Any], start_s: float | None = None) -> dict[str, Any]:
    samples = sum(len(g.texts) for g in out)
    tokens = sum(sum(g.completion_tokens) for g in out)
    return {"backend": name, "start_s": None if start_s is None else round(start_s, 1), "wall_s": round(wall, 2),
            "samples": samples, "samples_per_s": round(samples / wall, 2), "tokens_per_s": round(tokens / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--concurrency", default="1,2,4")
    args = ap.parse_args()

    from rzero_bench.backends import make_generator

    results: dict[str, list[dict[str, Any]]] = {"greedy": [], "sampled": []}
    work = {w: _requests(args.items, args.m, args.max_tokens, w == "greedy") for w in results}
    texts: dict[str, list[tuple[str, ...]]] = {}
    with make_generator("hf", args.model, batch_size=args.batch_size, threads=1) as hf:
        for w, reqs in work.items():
            wall, out = _timed(hf, reqs)
            results[w].append(_row("hf (in process)", wall, out))
            texts[f"hf-{w}"] = [g.texts for g in out]
    for c in [int(x) for x in args.concurrency.split(",")]:
        t0 = time.perf_counter()
        with make_generator("served", args.model, engine="transformers", concurrency=c, threads=1,
                            startup_timeout=600) as sv:
            start = time.perf_counter() - t0
            for w, reqs in work.items():
                wall, out = _timed(sv, reqs)
                row = _row(f"transformers serve, {c} in flight", wall, out, start)
                if w == "greedy":
                    same = sum(a == g.texts for a, g in zip(texts["hf-greedy"], out, strict=True))
                    row["same_greedy_text"] = f"{same}/{len(out)}"
                results[w].append(row)
    load = os.getloadavg()
    print(json.dumps({"items": args.items, "m": args.m, "max_tokens": args.max_tokens, "loadavg": load,
                      "results": results}, indent=1))
    for w, rows in results.items():
        print(f"\n{w} ({args.items} items x {1 if w == 'greedy' else args.m}, max_tokens {args.max_tokens})")
        print("| backend | start s | wall s | samples/s | tokens/s | same greedy text |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['backend']} | {r['start_s'] or '-'} | {r['wall_s']} | {r['samples_per_s']} | "
                  f"{r['tokens_per_s']} | {r.get('same_greedy_text', '-')} |")


if __name__ == "__main__":
    main()
