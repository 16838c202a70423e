"""Loading a task's items: a local mirror, the hub, or a built-in generator; seeded ``--limit``.

Sources, in this order: ``processor: generated`` tasks come from :mod:`rzero_bench.tasks.generators`
(no data directory needed). Otherwise a data directory laid out like ``../shared/benchmarks``
(``--data-dir`` / ``RZERO_DATA_DIR``) gives ``<data_dir>/<metadata.local_file>`` (JSONL, a JSON list
or ``{"examples": [...]}``, or BBEH's ``bbeh_<subtask>/task.json`` tree); without one, the hub id
(``datasets.load_dataset(dataset_path, dataset_name, split=test_split)``), refused at once when
``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set.

Every item gets ``_doc_id`` (:data:`DOC_ID_KEY`: ``metadata.id_field``, BBEH's ``<subtask>/<i>``, or
the row index) and, when the task has ``metadata.category_field``, ``_category``. ``--limit N``
draws a seeded subsample in the original order, stratified by category when there is one:
category c gets floor(N * n_c / n) items, and the remaining items go to the largest remainders
(ties broken by the seeded RNG).
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

from rzero_bench.errors import DataError, UserError
from rzero_bench.tasks.generators import generate
from rzero_bench.tasks.keys import CATEGORY_KEY, DOC_ID_KEY
from rzero_bench.tasks.schema import TaskSpec

__all__ = [
    "DOC_ID_KEY",
    "CATEGORY_KEY",
    "offline",
    "local_path",
    "has_local_data",
    "generated_docs",
    "read_local",
    "subsample",
    "load_docs",
]

_TRUE = {"1", "true", "yes", "on"}


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set to a true value."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def generated_docs(spec: TaskSpec) -> list[dict[str, Any]]:
    """The rows of a ``processor: generated`` task (its generator called with its kwargs)."""
    return generate(str(spec.metadata.generator), spec.metadata.generator_kwargs)


def local_path(spec: TaskSpec, data_dir: str | os.PathLike[str]) -> Path:
    """Where the task's local file lives under ``data_dir``."""
    return Path(data_dir) / spec.metadata.local_file


def has_local_data(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> bool:
    """True when the task can be loaded without the hub (generated, or its local file exists)."""
    if spec.metadata.processor == "generated":
        return True
    return data_dir is not None and local_path(spec, data_dir).exists()


def read_local(spec: TaskSpec, data_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The task's raw rows from the data directory (or its generator); a missing file is a ``DataError``."""
    if spec.metadata.processor == "generated":
        return generated_docs(spec)
    path = local_path(spec, data_dir)
    if not path.exists():
        raise DataError(
            f"task {spec.task}: local data file {path} not found; put {spec.metadata.local_file} under the data"
            f" directory, point --data-dir/RZERO_DATA_DIR elsewhere, or unset it to use the hub ({spec.dataset_path})"
        )
    if spec.metadata.processor == "bbeh":
        return _read_bbeh(path, spec)
    rows: list[dict[str, Any]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            if path.suffix == ".json":
                data = json.load(fh)
                rows = list(data if isinstance(data, list) else data.get("examples", []))
            else:
                for line in fh:
                    if line.strip():
                        rows.append(json.loads(line))
    except json.JSONDecodeError as e:
        raise DataError(f"task {spec.task}: {path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise DataError(f"task {spec.task}: {path} is not UTF-8") from None
    return rows


def _read_bbeh(path: Path, spec: TaskSpec) -> list[dict[str, Any]]:
    """BBEH upstream layout: ``<dir>/bbeh_<task>/task.json`` = {"examples": [{"input","target"}]}."""
    rows: list[dict[str, Any]] = []
    task_files = sorted(path.glob("*/task.json")) if path.is_dir() else [path]
    if not task_files:
        raise DataError(f"task {spec.task}: no */task.json under {path}")
    for tf in task_files:
        try:
            data = json.loads(tf.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"task {spec.task}: {tf} is not valid JSON ({e})") from None
        name = tf.parent.name.removeprefix("bbeh_")
        for i, ex in enumerate(data.get("examples", [])):
            row = {"input": ex["input"], "target": ex["target"], "bbeh_task": name}
            row[DOC_ID_KEY] = f"{name}/{i}"
            rows.append(row)
    return rows


def _read_hub(spec: TaskSpec) -> list[dict[str, Any]]:
    if offline():
        raise DataError(
            f"task {spec.task}: the hub dataset {spec.dataset_path} cannot be reached offline (HF_HUB_OFFLINE/"
            "HF_DATASETS_OFFLINE is set); set RZERO_DATA_DIR or pass --data-dir to a local mirror"
            " laid out like ../shared/benchmarks (`rzero-bench data fetch --data-dir DIR` builds one)"
        )
    try:
        import datasets
    except ImportError:  # pragma: no cover
        raise UserError("the 'datasets' package is required to load tasks from the hub") from None
    try:
        ds = datasets.load_dataset(spec.dataset_path, spec.dataset_name, split=spec.test_split,
                                   revision=spec.metadata.revision)
    except Exception as e:  # noqa: BLE001 - any hub failure becomes one line
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise DataError(
            f"task {spec.task}: could not load {spec.dataset_path} from the hub ({first}); set RZERO_DATA_DIR"
            " or pass --data-dir to a local mirror (`rzero-bench data fetch --data-dir DIR` builds one where the"
            " hub is reachable)"
        ) from None
    rows = [dict(r) for r in ds]
    if spec.metadata.processor == "bbeh":
        for i, r in enumerate(rows):
            name = str(r.get("task", r.get("bbeh_task", "bbeh"))).replace(" ", "_").removeprefix("bbeh_")
            r.setdefault("bbeh_task", name)
            r[DOC_ID_KEY] = f"{name}/{i}"
    return rows


def subsample(docs: list[dict[str, Any]], limit: int | None, seed: int, category_field: str | None) -> list[dict[str, Any]]:
    """Seeded subsample of ``limit`` docs, stratified by category (largest-remainder allocation).

    Keeps the original order of the chosen docs. ``limit`` >= len(docs) or None returns all.
    """
    if limit is None or limit >= len(docs):
        return list(docs)
    rng = random.Random(seed)
    if not category_field:
        idx = sorted(rng.sample(range(len(docs)), limit))
        return [docs[i] for i in idx]
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        groups.setdefault(str(d.get(CATEGORY_KEY, "")), []).append(i)
    names = sorted(groups)
    total = len(docs)
    quotas = {c: limit * len(groups[c]) / total for c in names}
    alloc = {c: math.floor(q) for c, q in quotas.items()}
    left = limit - sum(alloc.values())
    tiebreak = {c: rng.random() for c in names}
    for c in sorted(names, key=lambda c: (-(quotas[c] - alloc[c]), tiebreak[c]))[:left]:
        alloc[c] += 1
    chosen: list[int] = []
    for c in names:
        chosen.extend(rng.sample(groups[c], alloc[c]))
    return [docs[i] for i in sorted(chosen)]


def load_docs(
    spec: TaskSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The task's items (dicts with the dataset's fields plus ``_doc_id`` and ``_category``)."""
    if spec.metadata.processor == "generated":
        rows = generated_docs(spec)
    else:
        rows = read_local(spec, data_dir) if data_dir is not None else _read_hub(spec)
    id_field = spec.metadata.id_field
    cat_field = spec.metadata.category_field
    for i, r in enumerate(rows):
        if DOC_ID_KEY not in r:
            if id_field is not None and id_field in r:
                r[DOC_ID_KEY] = str(r[id_field])
            else:
                r[DOC_ID_KEY] = str(i)
        if cat_field is not None:
            if cat_field not in r:
                raise DataError(f"task {spec.task}: category_field {cat_field!r} is missing from the data")
            r[CATEGORY_KEY] = str(r[cat_field])
    return subsample(rows, limit, seed, cat_field)
