"""Config loading: presets, strict keys, overrides, the official-code variant."""

from __future__ import annotations

import pytest

from rzero_bench.config import RunConfig, config_hash, load_config, preset_names
from rzero_bench.errors import ConfigError


def test_defaults_follow_the_paper():
    cfg = RunConfig()
    assert cfg.selfplay.m == 10
    assert cfg.selfplay.reward_variant == "paper"
    assert cfg.selfplay.filter_mode == "paper" and cfg.selfplay.delta == 0.25
    assert cfg.selfplay.format_penalty == 0.0
    assert cfg.challenger.num_generations == 4 and cfg.solver.num_generations == 5
    assert cfg.challenger.lr == 1e-6 and cfg.challenger.beta == 1e-2


def test_unknown_key_is_one_line_error(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("preset: tiny\nselfplay:\n  mm: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown config key 'selfplay.mm'") as e:
        load_config(p)
    assert "\n" not in str(e.value)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("a: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_preset_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean 'tiny'"):
        load_config(preset="tinny")


def test_overrides_and_hash():
    a = load_config(preset="tiny")
    b = load_config(preset="tiny", overrides=["selfplay.m=3", "solver.lr=2e-5"], iterations=1)
    assert b.selfplay.m == 3 and b.solver.lr == 2e-5 and b.iterations == 1
    assert config_hash(a) != config_hash(b)
    assert config_hash(a) == config_hash(load_config(preset="tiny"))
    with pytest.raises(ConfigError, match="key=value"):
        load_config(preset="tiny", overrides=["oops"])


@pytest.mark.parametrize("name", ["paper", "official-code", "tiny"])
def test_shipped_presets_validate(name):
    assert name in preset_names()
    cfg = load_config(preset=name)
    assert isinstance(cfg, RunConfig)


def test_official_code_variant_sets_every_deviation():
    cfg = load_config(preset="official-code")
    sp = cfg.selfplay
    assert cfg.variant == "official-code"
    assert sp.m == 9 and sp.reward_variant == "official" and sp.filter_mode == "band"
    assert tuple(sp.band) == (0.3, 0.8) and sp.format_penalty == -1.0
    assert cfg.solver.format_weight == pytest.approx(0.1)
