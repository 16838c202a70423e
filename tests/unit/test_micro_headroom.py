"""The micro base must leave room for self-consistency: majority@m above greedy, else phase 2 is extended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rzero_bench.micro import pretrain as pt


def _meta(levels: dict[str, tuple[float, float]]) -> dict:
    return {
        "eval": {"samples": 8, "levels": {lv: {"greedy": g, "maj@8": m} for lv, (g, m) in levels.items()}}
    }


def test_headroom_is_the_largest_majority_gap() -> None:
    room = pt.headroom(_meta({"L2": (0.3, 0.45), "L3": (0.125, 0.625), "L4": (0.05, 0.1)}))
    assert room is not None and room.level == "L3" and room.gap == pytest.approx(0.5) and room.ok
    assert "maj@8 0.625 vs greedy 0.125 on L3 (+0.500" in room.describe()
    # 0.15 above greedy is not enough (margin 0.2); an unevaluated build has no verdict
    assert not pt.headroom(_meta({"L2": (0.3, 0.45)})).ok  # type: ignore[union-attr]
    assert pt.headroom(_meta({})) is None


def _fake_builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gaps: dict[int, float]) -> list[int]:
    """build_micro stand-in: the base's headroom on L3 depends on its phase-2 steps."""
    built: list[int] = []

    def build(recipe: pt.MicroRecipe, *, home: Path | None = None, progress: object = None) -> Path:
        steps = recipe.phase2.steps
        built.append(steps)
        d = tmp_path / f"p2-{steps}"
        d.mkdir(exist_ok=True)
        (d / pt.META_FILE).write_text(json.dumps(_meta({"L3": (0.1, 0.1 + gaps[steps])})))
        return d

    monkeypatch.setattr(pt, "build_micro", build)
    return built


def test_base_without_headroom_is_extended_until_it_has_some(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recipe = pt.make_recipe("s", 1)
    s2 = recipe.phase2.steps
    built = _fake_builds(monkeypatch, tmp_path, {s2: 0.0, round(s2 * 1.5): 0.3, s2 * 2: 0.6})
    lines: list[str] = []
    path, room, attempt = pt.build_with_headroom(recipe, log=lines.append)
    # the recipe first, then phase 2 x1.5, which has headroom: x2 is never built
    assert built == [s2, round(s2 * 1.5)] and attempt == 1 and path.name == f"p2-{round(s2 * 1.5)}"
    assert room is not None and room.gap == pytest.approx(0.3) and not lines


def test_a_base_with_headroom_keeps_its_recipe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    recipe = pt.make_recipe("s", 0)
    built = _fake_builds(monkeypatch, tmp_path, {recipe.phase2.steps: 0.5})
    assert pt.pretrain_micro("s", 0).name == f"p2-{recipe.phase2.steps}" and built == [recipe.phase2.steps]
    # explicit step counts (tests, experiments) are built as asked, headroom or not
    built.clear()
    _fake_builds(monkeypatch, tmp_path, {5: 0.0})
    assert pt.pretrain_micro("s", 0, phase1_steps=3, phase2_steps=5).name == "p2-5"


def test_no_headroom_at_all_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    recipe = pt.make_recipe("s", 1)
    s2 = recipe.phase2.steps
    built = _fake_builds(monkeypatch, tmp_path, {s2: 0.05, round(s2 * 1.5): 0.1, s2 * 2: 0.02})
    lines: list[str] = []
    path, room, attempt = pt.build_with_headroom(recipe, log=lines.append)
    assert len(built) == 3 and attempt == 1 and room is not None and room.gap == pytest.approx(0.1)
    assert len(lines) == 1 and "no self-consistency headroom after 3 attempts" in lines[0]
    assert "maj@8 0.200 vs greedy 0.100 on L3" in lines[0]


def test_the_demo_budget_is_checked_for_headroom_like_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    demo = pt.make_recipe("s", 0, budget="demo")
    s2 = demo.phase2.steps
    built = _fake_builds(monkeypatch, tmp_path, {s2: 0.1, round(s2 * 1.5): 0.25})
    assert pt.pretrain_micro("s", 0, budget="demo").name == f"p2-{round(s2 * 1.5)}"
    assert built == [s2, round(s2 * 1.5)]
