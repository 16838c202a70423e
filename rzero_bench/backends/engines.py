"""Serving engines of the ``served`` backend: how to start each one and how it differs on the wire.

Every engine is reached through the same code path (:mod:`rzero_bench.backends.served` starts the
command, polls ``ready_path`` until it answers 200, talks ``openai`` to it and stops the process
group on every exit); what differs between engines is data, kept in :data:`ENGINES`:

==============  =========================================  ============================================
field           ``vllm`` (GPU)                             ``transformers`` (CPU, CI)
==============  =========================================  ============================================
command         ``vllm serve {model} ... --served-model-   ``transformers serve {model} --host 127.0.0.1
                name {name} ...``                          --port {port}``
ready_path      ``/v1/models`` (lists the served name)     ``/health`` (its ``/v1/models`` scans the hub
                                                           cache and fails offline)
model name      ``{name}`` (``--served-model-name``)       the checkpoint path itself (the server is
                                                           pinned to it and refuses any other name)
``n``           honoured: one request per question         rejected: one request per sample, sample j
                                                           seeded ``seed + j``
sampling        ``temperature``, ``top_p``, ``top_k``      ``temperature`` and ``top_p`` are fields,
                fields                                     but it samples only when ``do_sample`` is
                                                           set, and ``top_k`` is refused as a field:
                                                           both go in ``generation_config`` (a JSON
                                                           string; unset values come from the model's
                                                           own generation config)
batching        continuous batching across requests        one ``generate`` at a time in one inference
                                                           thread; requests queue
==============  =========================================  ============================================

``{model}`` and ``{port}`` are required in every template; ``{name}``, ``{data_parallel_size}``,
``{max_model_len}`` and ``{gpu_memory_utilization}`` are filled in when a template uses them.
"""

from __future__ import annotations

import shlex
import string
from dataclasses import dataclass
from typing import Any, Literal

from rzero_bench.errors import UserError

TopKMode = Literal["field", "generation_config"]


@dataclass(frozen=True)
class Engine:
    """How one OpenAI-compatible serving engine is started and spoken to."""

    name: str
    command: str  # template; see the module docstring for the placeholders
    ready_path: str  # GET {root}{ready_path} answers 200 once the model is loaded
    supports_n: bool  # honours the request's ``n``; otherwise the client sends one request per sample
    names_model: bool  # serves the checkpoint under ``{name}``; otherwise under the path it was given
    top_k: TopKMode
    install: str  # what to install when the executable is missing
    concurrency: int | None = None  # requests in flight when the layout sets none (None: the layout's default)


ENGINES: dict[str, Engine] = {
    "vllm": Engine(
        name="vllm",
        command=("vllm serve {model} --host 127.0.0.1 --port {port} --served-model-name {name} "
                 "--data-parallel-size {data_parallel_size} --max-model-len {max_model_len} "
                 "--gpu-memory-utilization {gpu_memory_utilization}"),
        ready_path="/v1/models",
        supports_n=True,
        names_model=True,
        top_k="field",
        install="pip install 'rzero-bench[vllm]'",
    ),
    "transformers": Engine(
        name="transformers",
        command="transformers serve {model} --host 127.0.0.1 --port {port} --log-level warning",
        ready_path="/health",
        supports_n=False,
        names_model=False,
        top_k="generation_config",
        install="pip install 'rzero-bench[serving]'",
        # one generate() at a time server-side: more in flight gained nothing (perf/served_throughput.py:
        # 5.6 / 5.0 / 5.3 samples/s at 1 / 2 / 4) and would race the global seed each request sets
        concurrency=1,
    ),
}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (UserError naming the known ones otherwise)."""
    key = str(name).strip().lower()
    if key not in ENGINES:
        raise UserError(f"unknown serving engine {name!r}; known: {', '.join(ENGINES)}")
    return ENGINES[key]


def placeholders(template: str) -> set[str]:
    """The ``{names}`` a command template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def format_command(template: str, **values: Any) -> list[str]:
    """The argv of ``template`` with ``values`` filled in; each value is one argument, never re-split.

    A placeholder whose value is None is left out together with the option in front of it
    (``--max-model-len {max_model_len}`` disappears when no length is set), so the engine's own
    default applies. A placeholder without a value is a :class:`UserError`.
    """
    argv: list[str] = []
    for token in shlex.split(template):
        names = placeholders(token)
        missing = sorted(n for n in names if n not in values)
        if missing:
            raise UserError(f"serve command {template!r}: no value for {{{missing[0]}}}; "
                            f"known: {', '.join('{' + k + '}' for k in values)}")
        if any(values[n] is None for n in names):
            if argv and argv[-1].startswith("--") and not placeholders(argv[-1]):
                argv.pop()
            continue
        argv.append(token.format(**{n: values[n] for n in names}))
    return argv
