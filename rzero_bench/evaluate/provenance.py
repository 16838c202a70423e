"""Where a result comes from, as :class:`~rzero_bench.records.EvalResult` records it: the versions
of the packages that affect results, and the items' source (mirror file and sha256, generator, or
hub id@revision).
"""

from __future__ import annotations

import os
import platform
from typing import Any

from rzero_bench.tasks import TaskSpec, local_path


def package_versions() -> dict[str, str]:
    """Versions of the packages that affect results (without importing heavy ones)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("rzero-bench", "math-verify", "datasets", "transformers", "torch", "vllm", "jinja2"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def data_source(spec: TaskSpec, data_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Where the items came from: the mirror file and its sha256 (with the hub id and revision it was
    fetched from, when the mirror's SOURCES.json records it), the generator, or the hub id@revision."""
    from rzero_bench.datafetch import mirror_digest, mirror_source

    meta = spec.metadata
    if meta.processor == "generated":
        return {"kind": "generated", "generator": meta.generator, "kwargs": dict(meta.generator_kwargs)}
    if data_dir is not None:
        path = local_path(spec, data_dir)
        out: dict[str, Any] = {"kind": "mirror", "file": meta.local_file,
                               "sha256": mirror_digest(path) if path.exists() else None}
        if path.is_dir():  # e.g. BBEH's upstream task.json files: hash of the sorted (name, sha256) list
            out["files"] = sum(1 for p in path.rglob("*") if p.is_file())
        fetched = mirror_source(data_dir, meta.local_file)
        if fetched is not None:
            out["fetched_from"] = {k: fetched.get(k) for k in ("hub", "config", "split", "revision",
                                                              "resolved_revision", "source", "sha256")}
        return out
    revision = getattr(meta, "revision", None)
    hub = spec.dataset_path + (f"@{revision}" if revision else "")
    return {
        "kind": "hub",
        "id": hub,
        "config": spec.dataset_name,
        "split": spec.test_split,
        "revision": revision,
    }
