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


# ---------------------------------------------------------------- a config that explains itself
def _models():
    from pydantic import BaseModel

    seen, todo = [], [RunConfig]
    while todo:
        m = todo.pop()
        seen.append(m)
        for f in m.model_fields.values():
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel) and f.annotation not in seen:
                todo.append(f.annotation)
    return seen


def test_every_field_of_every_section_has_a_description():
    models = _models()
    assert {m.__name__ for m in models} >= {"RoleConfig", "SelfPlayConfig", "EvalConfig", "LayoutConfig"}
    missing = [f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items()
               if not (f.description and len(f.description) > 20)]
    assert missing == []


def test_official_deviations_name_both_values_in_their_description():
    from rzero_bench.config import field_description

    # the four fields that had no comment at all, and the options the official code sets differently
    for key, needles in {
        "selfplay.none_is_answer": ["Paper: false", "official code: true"],
        "selfplay.answer_match_gate": ["Paper: false", "af4a941"],
        "selfplay.dedup": ["official code: no dedup"],
        "selfplay.filter_mode": ["|p_hat - 1/2| <= delta", "0.3 <= p_hat <= 0.8"],
        "selfplay.m": ["Paper: 10", "9"],
        "selfplay.format_penalty": ["Paper §3.2: 0", "official code: -1"],
        "solver.format_weight": ["Paper §3.3: 0", "official code: 0.1"],
    }.items():
        desc = field_description(key)
        assert desc is not None and all(n in desc for n in needles), (key, desc)
    assert field_description("selfplay.nope") is None and field_description("prompts.solver") is None


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_passes_the_load_time_checks(name):
    cfg = load_config(preset=name)
    for role in ("challenger", "solver"):
        rc = getattr(cfg, role)
        assert rc.num_generations >= 2
        assert rc.prompts_per_step * rc.num_generations % rc.gradient_accumulation_steps == 0


# ---------------------------------------------------------------- fail at load
@pytest.mark.parametrize(("sets", "needles"), [
    (["challenger.num_generations=1"], ["greater than or equal to 2", "GRPO group size"]),
    (["solver.num_generations=1"], ["greater than or equal to 2", "normalised within a group"]),
    (["selfplay.m=1"], ["greater than or equal to 2", "one sample always agrees with itself"]),
    (["layout.generation_backend=openai"], ["layout.solver_server_url"]),
    (["selfplay.band=[0.8, 0.3]"], ["0 <= low <= high <= 1"]),
    (["selfplay.filter_mode=band", "selfplay.band=[0.2, 1.5]"], ["0 <= low <= high <= 1"]),
    # tiny challenger: 2 prompts x 4 = 8 completions; 3 micro-batches of a whole size do not exist
    (["challenger.gradient_accumulation_steps=3"], ["8 completions", "challenger.gradient_accumulation_steps"]),
    # 8 completions over 3 GPUs x 1 micro-batch
    (["layout.accelerate_config=accelerate/8gpu_zero2.yaml", "layout.generation_backend=served",
      "layout.challenger_gpus=0,1,2"], ["3 processes"]),
    (["layout.accelerate_config=accelerate/8gpu_zero2.yaml"], ["generation_backend=served"]),
    (["selfplay.num_questions=3"], ["solver.prompts_per_step=4"]),
    (["selfplay.min_kept=100"], ["min_kept=100 can never be met"]),
    (["challenger.format_weight=0.1"], ["solver.format_weight"]),
    (["challenger.loss_type=dapoo"], ["did you mean 'dapo'"]),
    (["layout.generation_backend=served", "layout.serve_command=vllm serve {model} --port {prot}"],
     ["placeholders are {model}, {port} and {name}"]),
    (["layout.generation_backend=served", "layout.serve_command=vllm serve {model}"], ["lacks {port}"]),
    (["oracle=reference"], ["probes.n is 0"]),
    (["oracle=gpt-4o"], ["unknown oracle 'gpt-4o'"]),
    (["oracle=exact-arith", "probes.n=5"], ["probes.n=5 has no effect"]),
])
def test_impossible_combinations_fail_when_the_config_loads(sets, needles):
    with pytest.raises(ConfigError) as e:
        load_config(preset="tiny", overrides=sets)
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


@pytest.mark.parametrize("sets", [
    ["layout.generation_backend=openai", "layout.solver_server_url=http://127.0.0.1:8000/v1"],
    ["layout.accelerate_config=accelerate/8gpu_zero2.yaml", "layout.generation_backend=served",
     "layout.challenger_gpus=0,1", "layout.solver_gpus=0,1,2,3"],  # 8/2 and 16/4 completions: whole
    ["layout.accelerate_config=accelerate/multinode.yaml", "layout.generation_backend=served"],  # processes unknown
    ["oracle=reference", "probes.n=5"],
    ["oracle=openai:gpt-4o@http://127.0.0.1:9/v1"],
    ["challenger.gradient_accumulation_steps=8", "solver.gradient_accumulation_steps=16"],
    ["selfplay.num_questions=4", "solver.prompts_per_step=4"],
    ["prompts.solver=my_prompt.txt", "challenger.extra.epsilon_high=0.3"],  # free-form sections
])
def test_the_possible_neighbours_of_those_combinations_still_load(sets):
    assert isinstance(load_config(preset="tiny", overrides=sets), RunConfig)


def test_paper_preset_moved_onto_one_gpu_in_process_loads():
    # the trainers/README one-GPU recipe: vLLM in process, GRPO in process (1 training process)
    cfg = load_config(preset="paper", overrides=[
        "layout.generation_backend=vllm", "layout.accelerate_config=null", "layout.trainer_use_vllm=false"])
    assert cfg.layout.accelerate_config is None and cfg.layout.generation_backend == "vllm"


# ---------------------------------------------------------------- did-you-mean and descriptions
@pytest.mark.parametrize(("spec", "guess", "section_key"), [
    ("selfplay.lamb=2", "selfplay.lam", "bleu_threshold"),
    ("solver.m=3", "selfplay.m", "gradient_accumulation_steps"),  # right key, wrong section
    ("eval.limt=3", "eval.limit", "max_samples"),
    ("layot.generation_backend=hf", "layout.generation_backend", "controls"),
])
def test_unknown_set_key_suggests_the_closest_and_lists_the_section(spec, guess, section_key):
    with pytest.raises(ConfigError) as e:
        load_config(preset="tiny", overrides=[spec])
    msg = str(e.value)
    assert msg.startswith(f"--set {spec}: unknown config key") and f"did you mean {guess!r}" in msg
    assert section_key in msg.split("valid keys of", 1)[1]


def test_set_below_a_value_is_refused():
    with pytest.raises(ConfigError, match="challenger.lr is a value, not a section"):
        load_config(preset="tiny", overrides=["challenger.lr.x=1"])


def test_unknown_yaml_key_suggests_too_and_wins_over_later_value_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("preset: tiny\nsolver:\n  lr: abc\nselfplay:\n  delat: 0.2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: unknown config key 'selfplay.delat' (did you mean 'selfplay.delta'?)")


def test_bad_value_names_its_source_and_shows_the_field_description(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(preset="tiny", overrides=["selfplay.delta=0.7"])
    assert str(e.value).startswith("--set selfplay.delta=0.7: Input should be less than or equal to 0.5")
    assert "Half-width of the paper filter" in str(e.value)
    p = tmp_path / "c.yaml"
    p.write_text("preset: tiny\nselfplay:\n  filter_mode: bands\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: selfplay.filter_mode='bands': Input should be 'paper' or 'band'")
    assert "official code: 0.3 <= p_hat <= 0.8" in str(e.value)


def test_loss_types_match_the_trainer():
    from rzero_bench.config import LOSS_TYPES
    from rzero_bench.training import grpo

    assert set(LOSS_TYPES) == grpo._LOSS_TYPES


# ---------------------------------------------------------------- config show
@pytest.mark.parametrize("name", preset_names())
def test_rendered_config_documents_every_key_and_loads_back_identically(name, tmp_path):
    from rzero_bench.config import config_keys, field_description, render_config

    cfg = load_config(preset=name)
    text = render_config(cfg)
    lines = text.splitlines()
    for key in config_keys():
        section, _, leaf = key.rpartition(".")
        indent = "  " if section else ""
        start = lines.index(f"{section}:") if section else 0
        at = next(i for i in range(start, len(lines)) if lines[i].startswith(f"{indent}{leaf}:"))
        above = at
        while lines[above - 1].startswith(f"{indent}# "):
            above -= 1
        comment = " ".join(line.strip()[2:] for line in lines[above:at])
        assert comment == " ".join(field_description(key).split()), key  # its description, right above it
    p = tmp_path / "shown.yaml"
    p.write_text(text, encoding="utf-8")
    again = load_config(p)
    assert config_hash(again) == config_hash(cfg) and again.iterations == cfg.iterations


def test_config_show_command_prints_hash_and_descriptions(monkeypatch, capsys):
    from rzero_bench import cli

    monkeypatch.setattr("sys.argv", ["rzero-bench", "config", "show", "--preset", "micro", "--set", "selfplay.m=6"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    out = capsys.readouterr().out
    want = config_hash(load_config(preset="micro", overrides=["selfplay.m=6"]))
    assert e.value.code in (0, None) and out.startswith(f"# rzero-bench resolved config; config_hash {want}")
    assert "\n  m: 6\n" in out and "# Whether a solver sample with no \\boxed{} answer votes" in out
    monkeypatch.setattr("sys.argv", ["rzero-bench", "config", "show", "--set", "selfplay.lamb=1"])
    with pytest.raises(SystemExit) as e:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "did you mean 'selfplay.lam'" in err[0]


@pytest.mark.parametrize("spec", ["reference", "exact-arith", "exact_arith", " reference ", "openai:gpt-4o",
                                  "openai:gpt-4o@http://h:1/v1", "openai:", "openai:@http://h/v1", "hf:/m",
                                  "hf:", "gpt-4o", "refrence", "", "HF:x"])
def test_oracle_check_at_load_accepts_exactly_what_label_acc_builds(spec):
    from rzero_bench.config import _oracle_problem
    from rzero_bench.errors import UserError
    from rzero_bench.report.label_acc import parse_oracle

    try:
        parse_oracle(spec)
        builds = True
    except UserError:
        builds = False
    assert (_oracle_problem(spec) is None) == builds


def test_misspelt_oracle_gets_a_did_you_mean():
    with pytest.raises(ConfigError, match=r"unknown oracle 'refrence' \(did you mean 'reference'\?\)"):
        load_config(preset="tiny", overrides=["oracle=refrence", "probes.n=5"])
