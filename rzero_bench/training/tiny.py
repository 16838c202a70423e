"""Tiny offline models: a locally trained byte-level BPE tokenizer plus a randomly initialised Qwen3.

Nothing is downloaded. The tokenizer is trained with ``tokenizers`` on text this module generates
deterministically (math prose, LaTeX, ``\\boxed{}``, ``<question>`` tags, arithmetic); digits are
split one per token. It has ``<|endoftext|>`` (pad), ``<|im_start|>`` and ``<|im_end|>`` (eos) and
a ChatML-style chat template. The model is a ``Qwen3ForCausalLM`` with tied embeddings, seeded
random init, stored in float32 with ``save_pretrained``.

A build is cached under ``rzero_home()/models/<name>-<recipe hash>/``: the hash covers every input
(size, vocabulary, corpus, template, seed, library versions), so a cached directory is reused only
for the same recipe. Builds go to a temporary directory beside the target and are renamed into
place, so concurrent builders never see or leave a half-written model; the loser of a race
discards its copy. Rebuilding the same recipe gives byte-identical files.

Reusable pieces (for other model builders such as the micro world): :func:`build_tokenizer`,
:func:`make_model_config`, :func:`init_model`, :func:`count_params`, :data:`SIZES`,
:func:`recipe_hash`, :func:`build_cached`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rzero_bench.errors import UserError
from rzero_bench.store import atomic_write_json, sha256_json, sha256_text, temp_dir_beside

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, PreTrainedTokenizerFast, Qwen3Config

RECIPE_VERSION = 1
DEFAULT_SEED = 0
DEFAULT_VOCAB_SIZE = 1024

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, IM_START, IM_END)

CHAT_TEMPLATE_NAME = "rzero-chatml-v1"
# ChatML: <|im_start|>{role}\n{content}<|im_end|>\n ... then <|im_start|>assistant\n to generate.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class ModelSize:
    """Shape of a Qwen3 decoder; ``target_params`` is the nominal size (with a ~1k vocabulary)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    target_params: int
    max_position_embeddings: int = 4096


# Nominal sizes. With the tiny tokenizer (756 tokens, padded to 768): xs 197,152, s ~3.89M, m ~25.6M.
SIZES: dict[str, ModelSize] = {
    "xs": ModelSize(64, 3, 4, 2, 16, 192, target_params=200_000),
    "s": ModelSize(256, 5, 4, 2, 64, 704, target_params=4_000_000),
    "m": ModelSize(512, 8, 8, 4, 64, 1536, target_params=25_000_000),
}


def rzero_home() -> Path:
    """Cache root: ``$RZERO_HOME`` if set, else ``~/.cache/rzero-bench``."""
    env = os.environ.get("RZERO_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rzero-bench"


def get_size(size: str | ModelSize) -> ModelSize:
    """Look up a named size (UserError listing the valid names if unknown)."""
    if isinstance(size, ModelSize):
        return size
    if size not in SIZES:
        raise UserError(f"unknown tiny model size {size!r}; valid sizes: {', '.join(SIZES)}")
    return SIZES[size]


# ------------------------------------------------------------------ corpus
_NAMES = ["Alice", "Bob", "Carla", "Dan", "Eve", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena"]
_ITEMS = ["apples", "books", "coins", "marbles", "pencils", "stamps", "cards", "shells", "tickets", "eggs"]
_VARS = ["x", "y", "z", "n", "a", "b", "k", "t"]
_PROSE = [
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Let us think step by step.",
    "First, we simplify the expression.",
    "Therefore, the answer is",
    "We check the result by substitution.",
    "Write exactly one problem inside <question> and </question>.",
    "The final answer is a single number or expression.",
    "Consider the function f(x) defined for all real numbers x.",
    "Find the number of positive integers less than 100 that are divisible by 3 or 5.",
    "A triangle has sides of length 3, 4 and 5. What is its area?",
    "The probability that both events occur is the product of their probabilities.",
    "Let ABC be a triangle with a right angle at C.",
    "Since the sum of the angles of a triangle is 180 degrees, the third angle follows.",
    "Hence the equation has exactly two real solutions.",
    "You set problems for a student who is learning mathematics.",
    "Think about which problem would be hard but solvable.",
    "So the minimum value is attained when both terms are equal.",
    "Answer: C",
    "The correct option is (B).",
]


def _expr(rng: random.Random, depth: int = 0) -> tuple[str, int]:
    """A random integer expression in LaTeX and its value."""
    if depth > 1 or rng.random() < 0.4:
        v = rng.randint(0, 99)
        return str(v), v
    a, va = _expr(rng, depth + 1)
    b, vb = _expr(rng, depth + 1)
    op = rng.choice(["+", "-", "\\times"])
    val = va + vb if op == "+" else va - vb if op == "-" else va * vb
    text = f"{a} {op} {b}" if depth == 0 else f"({a} {op} {b})"
    return text, val


def _line(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice(["+", "-", "*"])
        val = a + b if op == "+" else a - b if op == "-" else a * b
        return f"{a} {op} {b} = {val}"
    if kind == 1:
        e, v = _expr(rng)
        return f"Compute ${e}$. We get ${e} = {v}$, so the answer is $\\boxed{{{v}}}$."
    if kind == 2:
        name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        return (
            f"<question>{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?"
            f"</question>\n\\boxed{{{a + b}}}"
        )
    if kind == 3:
        x, c, m = _VARS[rng.randrange(len(_VARS))], rng.randint(1, 30), rng.randint(2, 9)
        s = rng.randint(-20, 20)
        return f"Solve for ${x}$: ${m}{x} + {c} = {m * s + c}$. Subtracting {c} and dividing by {m}, ${x} = {s}$. \\boxed{{{s}}}"
    if kind == 4:
        p, q = rng.randint(1, 12), rng.randint(2, 12)
        r, s = rng.randint(1, 12), rng.randint(2, 12)
        return f"$\\frac{{{p}}}{{{q}}} + \\frac{{{r}}}{{{s}}} = \\dfrac{{{p * s + r * q}}}{{{q * s}}}$"
    if kind == 5:
        n = rng.randint(2, 30)
        return f"$\\sqrt{{{n * n}}} = {n}$ and ${n}^{{2}} = {n * n}$, while $\\pi \\approx 3.14159$ and $\\sin(\\pi/2) = 1$."
    if kind == 6:
        x = _VARS[rng.randrange(len(_VARS))]
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return (
            f"Let $f({x}) = {x}^{{2}} + {a}{x} - {b}$. Then $f(1) = {1 + a - b}$ and "
            f"$f'({x}) = 2{x} + {a}$, so $f$ is increasing for ${x} \\ge {-a}/2$."
        )
    if kind == 7:
        return rng.choice(_PROSE)
    if kind == 8:
        lo, hi = rng.randint(-9, 0), rng.randint(1, 9)
        return f"The solution set is $[{lo}, {hi})$, that is ${lo} \\le x < {hi}$; its length is $\\boxed{{{hi - lo}}}$."
    n, k = rng.randint(3, 12), rng.randint(1, 3)
    from math import comb

    return f"The number of ways to choose {k} of {n} objects is $\\binom{{{n}}}{{{k}}} = {comb(n, k)}$."


def tiny_corpus(seed: int = DEFAULT_SEED, n_lines: int = 4000) -> list[str]:
    """Deterministic training text for the tiny tokenizer (same seed, same lines)."""
    rng = random.Random(f"rzero-tiny-corpus:{seed}")
    return list(_PROSE) + [_line(rng) for _ in range(n_lines)]


# ------------------------------------------------------------------ tokenizer
def build_tokenizer(
    corpus: Iterable[str],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    *,
    special_tokens: tuple[str, ...] = SPECIAL_TOKENS,
    eos_token: str = IM_END,
    pad_token: str = PAD_TOKEN,
    chat_template: str | None = CHAT_TEMPLATE,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (one token per digit) on ``corpus``; deterministic.

    ``vocab_size`` counts the 256 byte symbols and the special tokens; the result can be smaller
    when the corpus runs out of merges.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos_token, pad_token=pad_token)
    fast.padding_side = "left"
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


# ------------------------------------------------------------------ model
def make_model_config(
    size: str | ModelSize,
    vocab_size: int,
    *,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    initializer_range: float = 0.02,
) -> Qwen3Config:
    """A float32 ``Qwen3Config`` of the named (or given) size with tied embeddings."""
    from transformers import Qwen3Config

    spec = get_size(size)
    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True,
        initializer_range=initializer_range,
        bos_token_id=None,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        use_cache=True,
        dtype="float32",
    )


def count_params(config: Qwen3Config) -> int:
    """Parameter count of a model with this config (built on the meta device: no memory, no init)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def init_model(config: Qwen3Config, seed: int = DEFAULT_SEED) -> PreTrainedModel:
    """A randomly initialised causal LM for ``config``; the same seed gives the same weights.

    The global torch RNG state is restored afterwards.
    """
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    return model


def padded_vocab_size(n_tokens: int, multiple: int = 64) -> int:
    """Round the tokenizer length up to a multiple (rows beyond it are never produced by the tokenizer)."""
    return -(-n_tokens // multiple) * multiple


# ------------------------------------------------------------------ cache
def recipe_hash(recipe: dict[str, Any], length: int = 12) -> str:
    """Short content hash of a JSON-able recipe."""
    return sha256_json(recipe)[:length]


def build_cached(target: Path, builder: Callable[[Path], None]) -> Path:
    """Return ``target`` if it exists; else run ``builder(tmp_dir)`` and rename ``tmp_dir`` to it.

    The rename is atomic: a reader sees either no directory or a complete one. When another
    process finished first, its directory is kept and ours is discarded.
    """
    target = Path(target)
    if target.is_dir():
        return target
    with temp_dir_beside(target) as tmp:
        builder(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    return target


def library_versions() -> dict[str, str]:
    """Versions that determine the bytes of a saved model."""
    import tokenizers
    import torch
    import transformers

    return {
        "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def tiny_recipe(
    size: str, *, seed: int = DEFAULT_SEED, vocab_size: int = DEFAULT_VOCAB_SIZE
) -> dict[str, Any]:
    """Everything that determines a tiny build (its hash names the cache directory)."""
    spec = get_size(size)
    return {
        "recipe_version": RECIPE_VERSION,
        "kind": "tiny",
        "size": size,
        "shape": asdict(spec),
        "vocab_size": vocab_size,
        "seed": seed,
        "corpus_sha256": sha256_text("\n".join(tiny_corpus(seed))),
        "special_tokens": list(SPECIAL_TOKENS),
        "chat_template": CHAT_TEMPLATE,
        "versions": library_versions(),
    }


def tiny_model_dir(size: str = "s", *, home: Path | None = None) -> Path:
    """Where :func:`build_tiny` puts (or finds) the model for ``size``."""
    recipe = tiny_recipe(size)
    return Path(home or rzero_home()) / "models" / f"tiny-{size}-{recipe_hash(recipe)}"


def save_model_and_tokenizer(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, out_dir: Path
) -> None:
    """``save_pretrained`` both (safetensors; deterministic bytes for the same weights)."""
    from transformers.utils import logging as hf_logging

    tokenizer.save_pretrained(out_dir)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out_dir)
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def build_tiny(size: str = "s", *, home: Path | None = None) -> Path:
    """Build (or reuse) the tiny tokenizer + Qwen3 model of ``size`` ("xs" | "s" | "m"); returns its directory."""
    get_size(size)
    recipe = tiny_recipe(size)
    target = Path(home or rzero_home()) / "models" / f"tiny-{size}-{recipe_hash(recipe)}"

    def _build(tmp: Path) -> None:
        from transformers import GenerationConfig

        tokenizer = build_tokenizer(tiny_corpus(recipe["seed"]), recipe["vocab_size"])
        eos_id = int(tokenizer.convert_tokens_to_ids(IM_END))  # type: ignore[arg-type]
        pad_id = int(tokenizer.convert_tokens_to_ids(PAD_TOKEN))  # type: ignore[arg-type]
        config = make_model_config(
            size, padded_vocab_size(len(tokenizer)), eos_token_id=eos_id, pad_token_id=pad_id
        )
        model = init_model(config, seed=recipe["seed"])
        model.generation_config = GenerationConfig(eos_token_id=[eos_id, pad_id], pad_token_id=pad_id)
        save_model_and_tokenizer(model, tokenizer, tmp)
        n_params = sum(p.numel() for p in model.parameters())
        atomic_write_json(
            tmp / "rzero_recipe.json", {**recipe, "n_params": n_params, "tokenizer_len": len(tokenizer)}
        )

    return build_cached(target, _build)


def tiny_build_command(size: str = "s", sample: bool = False) -> None:
    """CLI: build (or reuse) the tiny model, print its path, optionally a seeded sample generation."""
    from rich.console import Console

    get_size(size)
    err = Console(stderr=True)
    t0 = time.perf_counter()
    with err.status(f"building tiny model '{size}' (cached under {rzero_home() / 'models'})"):
        path = build_tiny(size)
    err.print(f"[green]tiny-{size}[/green] ready in {time.perf_counter() - t0:.1f} s")
    print(path)
    if sample:
        from rzero_bench.backends.hf import HFGenerator
        from rzero_bench.records import GenerationRequest, SamplingParams

        request = GenerationRequest(
            messages=(
                {
                    "role": "system",
                    "content": "Please reason step by step, and put your final answer within \\boxed{}.",
                },
                {"role": "user", "content": "What is 12 + 35?"},
            ),
            params=SamplingParams(n=1, temperature=1.0, max_tokens=48, seed=0),
            id="sample",
        )
        with HFGenerator(path, device="cpu", threads=1) as gen:
            t1 = time.perf_counter()
            (out,) = gen.generate([request])
            dt = time.perf_counter() - t1
        err.print(
            f"sample (seed 0, temperature 1.0, {out.completion_tokens[0]} tokens, "
            f"{out.completion_tokens[0] / max(dt, 1e-9):.0f} tokens/s, finish={out.finish_reasons[0]}):"
        )
        print(out.texts[0])
