"""`rzero-bench report` on the constructed run fixture: values, paired-bootstrap deltas, formats, PNGs."""

from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rzero_bench.errors import UserError  # noqa: E402
from rzero_bench.report.results import canonical_task, discover, primary_metric, suite_means  # noqa: E402
from rzero_bench.report.tables import build_report, render, report_command  # noqa: E402

DEMO = ROOT / "tests" / "fixtures" / "runs" / "demo"


@pytest.fixture(scope="module")
def rep() -> dict:
    return build_report([DEMO], seed=0, n_boot=500)


def _row(rep: dict, name: str) -> dict:
    return next(r for r in rep["groups"][0]["rows"] if r["row"] == name)


def test_discover_run_and_results_dirs() -> None:
    sets = discover(DEMO)
    assert [s.iteration for s in sets] == [0, 1, 2] and sets[0].run_dir == DEMO
    assert [s.iteration for s in discover(DEMO / "results")] == [0, 1, 2]
    flat = discover(DEMO / "results" / "iter_1")
    assert (
        len(flat) == 1
        and flat[0].iteration is None
        and set(flat[0].tasks) == {"gsm8k", "math500", "mmlu_pro"}
    )
    with pytest.raises(UserError):
        discover(DEMO / "nope")


def test_primary_metric_and_names() -> None:
    assert primary_metric({"acc": 1, "mean@32": 1, "mean@4": 1}) == "mean@32"
    assert primary_metric({"acc": 1, "maj@8": 1}) == "acc"
    assert primary_metric({"pass@4": 1, "maj@4": 1}) == "maj@4"
    assert canonical_task("MATH-500") == "math500" and canonical_task("MMLU-Pro") == "mmlu_pro"
    assert canonical_task("minerva") == "minerva_math" and canonical_task("other") == "other"


def test_suite_means_follow_the_paper() -> None:
    # Qwen3-4B-Base base row: Overall = mean(Math avg, SuperGPQA, MMLU-Pro, BBEH) = 27.10
    vals = {
        t: (0.4258, 0.0)
        for t in ("amc23", "aime24", "aime25", "math500", "gsm8k", "minerva_math", "olympiadbench")
    }
    vals |= {"supergpqa": (0.2088, 0.0), "mmlu_pro": (0.3738, 0.0), "bbeh": (0.0757, 0.0)}
    m = suite_means(vals)
    assert m["overall"]["value"] == pytest.approx(0.27103, abs=1e-5) and m["overall"]["complete"]
    assert m["general_avg"]["value"] == pytest.approx((0.2088 + 0.3738 + 0.0757) / 3)
    partial = suite_means({"gsm8k": (0.5, 0.1), "mmlu_pro": (0.3, 0.2)})
    assert partial["overall"]["value"] == pytest.approx(0.4) and not partial["overall"]["complete"]
    assert partial["overall"]["stderr"] == pytest.approx((0.1**2 + 0.2**2) ** 0.5 / 2)


def test_values_and_deltas(rep: dict) -> None:
    g = rep["groups"][0]
    assert g["columns"] == ["iter_0", "iter_1", "iter_2"] and g["base_model"] == "tiny:s"
    gsm = _row(rep, "gsm8k")
    assert gsm["values"]["iter_0"]["value"] == pytest.approx(25 / 60)
    d2 = gsm["deltas"]["iter_2"]
    assert d2["delta"] == pytest.approx(41 / 60 - 25 / 60)
    assert (
        d2["ci"]["n_items"] == 60
        and d2["ci"]["excludes_zero"]
        and d2["ci"]["lo"] < d2["delta"] < d2["ci"]["hi"]
    )
    mmlu = _row(rep, "mmlu_pro")["deltas"]["iter_1"]
    assert mmlu["delta"] == 0.0 and not mmlu["ci"]["excludes_zero"]
    math = _row(rep, "math_avg")
    base_m = (25 / 60 + _row(rep, "math500")["values"]["iter_0"]["value"]) / 2
    assert (
        math["values"]["iter_0"]["value"] == pytest.approx(base_m)
        and not math["values"]["iter_0"]["complete"]
    )
    assert math["deltas"]["iter_2"]["ci"]["n_items"] == 100
    overall = _row(rep, "overall")["deltas"]["iter_2"]
    assert overall["delta"] == pytest.approx((math["deltas"]["iter_2"]["delta"] + 0.0) / 2)


def test_same_seed_same_report_and_seed_matters() -> None:
    a = build_report([DEMO], seed=3, n_boot=300)
    assert a == build_report([DEMO], seed=3, n_boot=300)
    b = build_report([DEMO], seed=4, n_boot=300)
    assert a["groups"][0]["rows"] != b["groups"][0]["rows"]


def test_iteration_stats_and_stages(rep: dict) -> None:
    its = {it["key"]: it for it in rep["groups"][0]["iterations"]}
    assert its["iter_0"]["label_accuracy"] is None and its["iter_0"]["yield"] is None
    la = json.loads((DEMO / "iter_1" / "label_accuracy.json").read_text())
    assert its["iter_1"]["label_accuracy"]["accuracy"] == la["accuracy"]
    f = json.loads((DEMO / "iter_1" / "filter.json").read_text())
    assert its["iter_1"]["yield"]["rate"] == pytest.approx(f["kept"] / f["generated"])
    assert 0 < its["iter_1"]["no_answer_rate"] < 1 and 0 < its["iter_1"]["boxed_rate"] <= 1
    stages = {s["stage"]: s for s in rep["groups"][0]["stages"]}
    assert stages["iter_1/self_consistency"]["tokens"] == 30000 and stages["iter_1/filter"]["tokens"] is None
    assert stages["iter_2/challenger"]["wall_time_s"] == 81.0


def test_formats(rep: dict) -> None:
    md = render(rep, "md")
    assert "| GSM8K | acc | 41.67 ± 6.42 |" in md and "*" in md and "### Stages" in md
    data = json.loads(render(rep, "json"))
    assert data["groups"][0]["name"] == "demo"
    rows = list(csv.DictReader(io.StringIO(render(rep, "csv"))))
    gsm2 = next(r for r in rows if r["row"] == "gsm8k" and r["column"] == "iter_2")
    assert gsm2["significant"] == "1" and float(gsm2["delta"]) == pytest.approx(16 / 60, abs=1e-6)
    with pytest.raises(UserError):
        render(rep, "xml")


def test_plain_results_dirs_are_compared_with_the_first(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(DEMO / "results" / "iter_0", a)
    shutil.copytree(DEMO / "results" / "iter_2", b)
    rep = build_report([a, b], n_boot=200)
    g = rep["groups"][0]
    assert g["name"] == "comparison" and g["columns"] == ["a", "b"] and g["run_dir"] is None
    gsm = next(r for r in g["rows"] if r["row"] == "gsm8k")
    assert gsm["deltas"]["b"]["ci"]["excludes_zero"]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plots_are_valid_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_command([DEMO], fmt="md", plots=tmp_path / "plots", seed=0)
    out = capsys.readouterr()
    assert "## demo" in out.out
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == ["demo_accuracy.png", "demo_calibration.png", "demo_phat.png"]
    assert _png_size(tmp_path / "plots" / "demo_accuracy.png") == (800, 500)
    assert _png_size(tmp_path / "plots" / "demo_calibration.png") == (600, 600)
    w, h = _png_size(tmp_path / "plots" / "demo_phat.png")
    assert w == 800 and h == 500


def test_bad_format_is_user_error() -> None:
    with pytest.raises(UserError):
        report_command([DEMO], fmt="xml")
