"""Generation throughput of the ``hf`` backend vs plain transformers ``model.generate``.

Same tiny model, the same GSM8K prompts (system prompt + question through the chat template), the
same batch size and token budget. "generate" is batched ``model.generate`` the way a harness calls
it (prompts sorted by length, left padding, ``batch_size`` rows per call; greedy, or transformers'
own sampler for sampled rows); "ours" is ``HFGenerator.generate``. Tokens/s counts completion
tokens (up to and including eos). Times are the minimum over alternating rounds (the machine is
shared). For greedy rows, the table also says how many of our texts equal ``generate``'s.

Run: HF_HUB_OFFLINE=1 RZERO_DATA_DIR=../shared/benchmarks RZERO_HOME=.rzero_home \\
     .venv/bin/python perf/hf_generation.py [--sizes xs,s] [--prompts 32] [--max-tokens 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="xs,s")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--configs",
        default="16:greedy:1,64:greedy:1,16:sampled:4,64:sampled:4",
        help="comma-separated batch:mode:n (mode greedy|sampled; n samples per prompt)",
    )
    ap.add_argument("--data-dir", default=os.environ.get("RZERO_DATA_DIR", "../shared/benchmarks"))
    args = ap.parse_args()

    import torch

    from rzero_bench.backends.base import render_chat
    from rzero_bench.backends.hf import HFGenerator
    from rzero_bench.prompts import SOLVER_SYSTEM_PROMPT
    from rzero_bench.records import GenerationRequest, SamplingParams
    from rzero_bench.training.tiny import build_tiny

    torch.set_num_threads(args.threads)
    src = Path(args.data_dir) / "gsm8k" / "test.jsonl"
    questions = [
        json.loads(x)["question"] for x in src.read_text(encoding="utf-8").splitlines()[: args.prompts]
    ]
    messages = [
        ({"role": "system", "content": SOLVER_SYSTEM_PROMPT}, {"role": "user", "content": q})
        for q in questions
    ]

    print(
        f"\n{len(questions)} GSM8K prompts, max {args.max_tokens} new tokens, torch threads {args.threads}, CPU;"
        f" time = min over {args.rounds} alternating rounds\n"
    )
    print(
        "| model | batch | decoding | rows | generate tok/s | ours tok/s | speed-up | greedy texts identical |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        path = build_tiny(size)
        with HFGenerator(path, device="cpu", threads=args.threads) as gen:
            tok, model = gen.tokenizer, gen.model
            prompts = [render_chat(tok, m)[0] for m in messages]
            for conf in args.configs.split(","):
                batch, mode, n = conf.split(":")
                gen.batch_size = int(batch)
                greedy = mode == "greedy"
                params = (
                    SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
                    if greedy
                    else SamplingParams(
                        n=int(n), temperature=1.0, top_p=0.95, top_k=50, max_tokens=args.max_tokens, seed=0
                    )
                )
                reqs = [GenerationRequest(messages=m, params=params) for m in messages]

                t_ours, t_plain = [], []
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    n_plain, texts_plain = _plain_generate(
                        model, tok, prompts, gen.eos_ids, int(batch), greedy, int(n), args.max_tokens
                    )
                    t_plain.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    out = gen.generate(reqs)
                    n_ours, texts_ours = sum(sum(g.completion_tokens) for g in out), [g.texts[0] for g in out]
                    t_ours.append(time.perf_counter() - t0)
                a, b = n_plain / min(t_plain), n_ours / min(t_ours)
                same = (
                    f"{sum(x == y for x, y in zip(texts_ours, texts_plain, strict=True))}/{len(texts_ours)}"
                    if greedy
                    else "n/a (sampled)"
                )
                rows = len(prompts) * (1 if greedy else int(n))
                print(
                    f"| tiny-{size} | {batch} | {mode} | {rows} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x | {same} |",
                    flush=True,
                )


def _plain_generate(
    model: Any,
    tok: Any,
    prompts: list[str],
    eos_ids: list[int],
    batch: int,
    greedy: bool,
    n: int,
    max_tokens: int,
) -> tuple[int, list[str]]:
    """Batched ``model.generate`` over length-sorted prompts; returns (completion tokens, first text per prompt)."""
    import torch

    rows = [(i, j) for i in range(len(prompts)) for j in range(1 if greedy else n)]
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    rows.sort(key=lambda ij: -len(ids[ij[0]]))
    eos = set(eos_ids)
    total = 0
    texts: dict[int, str] = {}
    kw: dict[str, Any] = (
        {"do_sample": False}
        if greedy
        else {"do_sample": True, "temperature": 1.0, "top_p": 0.95, "top_k": 50}
    )
    for s in range(0, len(rows), batch):
        chunk = rows[s : s + batch]
        enc = tok.pad({"input_ids": [ids[i] for i, _ in chunk]}, padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_tokens, **kw)
        width = enc["input_ids"].shape[1]
        for (i, j), row in zip(chunk, out[:, width:].tolist(), strict=True):
            end = next((t + 1 for t, x in enumerate(row) if x in eos), len(row))
            total += end
            if j == 0:
                content = row[: end - 1] if row[end - 1] in eos else row[:end]
                texts[i] = tok.decode(content, skip_special_tokens=True)
    return total, [texts[i] for i in range(len(prompts))]


if __name__ == "__main__":
    main()
