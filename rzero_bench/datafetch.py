"""``rzero-bench data fetch``: build the local benchmark mirror (the ``RZERO_DATA_DIR`` layout) from the hub.

For every task (``--tasks`` / ``--suite``, default: every shipped task with a hub dataset; under
``--protocol official`` also the official variants' data, e.g. ``MrLight/bbeh-eval``) the rows of
``datasets.load_dataset(dataset_path, dataset_name, split=test_split, revision=metadata.revision)``
are written where the task reads them, ``<data_dir>/<metadata.local_file>``:

- ``processor: jsonl``: one JSON object per line (a ``.json`` name: one JSON list);
- ``processor: bbeh``: BBEH's upstream layout, ``<local_file>/bbeh_<task>/task.json`` =
  ``{"examples": [{"input", "target"}]}``, one directory per BBEH task;
- ``processor: generated`` tasks have no data to fetch.

Provenance: ``<data_dir>/SOURCES.json`` maps each written ``local_file`` to the hub id, config,
split, the revision asked for and the commit the hub resolved it to (when it says), the row count,
the sha256 of the file (of a directory: :func:`mirror_digest`) and the time. Evaluation results
record the mirror file, its sha256 and this entry (``EvalResult.data_source``).

``hub_dir`` (``--hub-dir``) stands in for the hub without a network: ``<hub_dir>/<dataset_path>``
is a local dataset directory read by the same ``datasets.load_dataset`` call (``dataset_name`` as
its sub-directory), so the whole path is tested offline.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rzero_bench.errors import DataError, UserError
from rzero_bench.store import atomic_write_json, atomic_write_jsonl, read_json, sha256_file, sha256_text
from rzero_bench.tasks import TaskSpec, offline

SOURCES_FILE = "SOURCES.json"

__all__ = ["SOURCES_FILE", "fetch", "fetch_command", "mirror_digest", "mirror_source"]


def mirror_digest(path: Path) -> str:
    """sha256 of a mirror file, or of a directory: of the sorted list of (relative name, sha256)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return sha256_text(json.dumps([[p.relative_to(path).as_posix(), sha256_file(p)] for p in files]))
    return sha256_file(path)


def mirror_source(data_dir: str | os.PathLike[str], local_file: str) -> dict[str, Any] | None:
    """The ``SOURCES.json`` entry of one mirror file (None when the mirror does not record one)."""
    path = Path(data_dir) / SOURCES_FILE
    if not path.is_file():
        return None
    try:
        entry = read_json(path).get(local_file)
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) else None


def _load_rows(spec: TaskSpec, hub_dir: Path | None) -> tuple[list[dict[str, Any]], str, str | None]:
    """(rows, where they came from, the resolved revision) of the task's dataset."""
    try:
        import datasets
    except ImportError:  # pragma: no cover
        raise UserError("`rzero-bench data fetch` needs the 'datasets' package") from None
    if hub_dir is not None:
        local = Path(hub_dir) / spec.dataset_path
        if not local.is_dir():
            raise DataError(f"task {spec.task}: {local} not found in the hub stand-in directory {hub_dir}")
        try:
            ds = datasets.load_dataset(str(local), data_dir=spec.dataset_name, split=spec.test_split)
        except Exception as e:  # noqa: BLE001 - one line for any loader failure
            raise DataError(f"task {spec.task}: could not read {local} ({str(e).splitlines()[0][:200]})") from None
        return [dict(r) for r in ds], f"local:{local}", None
    if offline():
        raise DataError(
            f"task {spec.task}: cannot fetch {spec.dataset_path} offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is"
            " set); unset them on a machine that reaches the hub, or pass --hub-dir to a local copy"
        )
    rev = spec.metadata.revision
    try:
        ds = datasets.load_dataset(spec.dataset_path, spec.dataset_name, split=spec.test_split, revision=rev)
    except Exception as e:  # noqa: BLE001
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise DataError(f"task {spec.task}: could not load {spec.dataset_path} from the hub ({first})") from None
    resolved = None
    try:
        from huggingface_hub import HfApi

        resolved = HfApi().dataset_info(spec.dataset_path, revision=rev).sha
    except Exception:  # noqa: BLE001 - the commit is provenance, not required to fetch
        resolved = None
    return [dict(r) for r in ds], f"hub:{spec.dataset_path}", resolved


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(row, ensure_ascii=False, default=str))


def _write(spec: TaskSpec, rows: list[dict[str, Any]], target: Path) -> None:
    if spec.metadata.processor == "bbeh":
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if "input" not in r or "target" not in r:
                raise DataError(f"task {spec.task}: BBEH rows need 'input' and 'target' (got {sorted(r)})")
            name = str(r.get("task", r.get("bbeh_task", "bbeh"))).replace(" ", "_").removeprefix("bbeh_")
            groups.setdefault(name, []).append({"input": r["input"], "target": r["target"]})
        for name, examples in sorted(groups.items()):
            atomic_write_json(target / f"bbeh_{name}" / "task.json", {"examples": examples})
        return
    clean = [_jsonable(r) for r in rows]
    if target.suffix == ".json":
        atomic_write_json(target, clean)
    else:
        atomic_write_jsonl(target, clean)


def fetch(
    specs: Sequence[TaskSpec],
    data_dir: str | os.PathLike[str],
    *,
    hub_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> dict[str, dict[str, Any]]:
    """Write each task's data under ``data_dir``; returns the ``SOURCES.json`` entries written."""
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    sources_path = root / SOURCES_FILE
    sources: dict[str, Any] = read_json(sources_path) if sources_path.is_file() else {}
    written: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for spec in specs:
        meta = spec.metadata
        if meta.processor == "generated" or meta.local_file in seen:
            continue
        seen.add(meta.local_file)
        target = root / meta.local_file
        if target.exists() and not force:
            log(f"{spec.task}: {target} exists (kept; --force fetches it again)")
            continue
        rows, origin, resolved = _load_rows(spec, Path(hub_dir) if hub_dir is not None else None)
        if not rows:
            raise DataError(f"task {spec.task}: {origin} split {spec.test_split!r} has no rows")
        _write(spec, rows, target)
        entry = {
            "task": spec.task,
            "hub": spec.dataset_path,
            "config": spec.dataset_name,
            "split": spec.test_split,
            "revision": meta.revision,
            "resolved_revision": resolved,
            "source": origin,
            "rows": len(rows),
            "sha256": mirror_digest(target),
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        sources[meta.local_file] = entry
        written[meta.local_file] = entry
        atomic_write_json(sources_path, sources)
        log(f"{spec.task}: {len(rows)} rows from {origin} -> {target}")
    return written


def fetch_command(
    *,
    data_dir: Path | None,
    tasks: str | None = None,
    suite: str | None = None,
    protocol: str | None = None,
    tasks_dir: Path | None = None,
    include_paths: Sequence[Path] = (),
    hub_dir: Path | None = None,
    force: bool = False,
) -> dict[str, dict[str, Any]]:
    """CLI: ``rzero-bench data fetch``."""
    from rzero_bench.protocols import known_tasks, plan_tasks

    if data_dir is None:
        raise UserError("data fetch needs a target: pass --data-dir or set RZERO_DATA_DIR")
    if not tasks and not suite:
        tasks = ",".join(known_tasks(tasks_dir, include_paths))
    planned = plan_tasks(suite=suite, tasks=tasks, protocol=protocol, tasks_dir=tasks_dir, include_paths=include_paths)
    specs = [v.spec for t in planned for v in (t, t.fallback) if v is not None]

    def log(msg: str) -> None:
        print(msg, flush=True)

    written = fetch(specs, data_dir, hub_dir=hub_dir, force=force, log=log)
    print(f"{len(written)} file(s) written under {data_dir} (provenance: {Path(data_dir) / SOURCES_FILE})")
    return written
