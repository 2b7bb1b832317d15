"""Config validation: defaults, clear errors naming the key, cross-key checks."""
import copy
import json

import pytest
import yaml

from conftest import REPO
from scalequest.config import ConfigError, load_config_files, merge_into, validate_config
from scalequest.models import ModelSpec


@pytest.fixture
def full_config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_full_scale_config_is_valid_and_keeps_paper_values(full_config):
    config = validate_config(full_config)
    assert sum(g["questions"] for g in config["generators"].values()) == 2_000_000
    assert config["respond"]["n"] == 5
    assert config["generate"]["sampling"] == {"temperature": 1.0, "top_p": 0.99, "max_tokens": 1024}
    assert config["respond"]["sampling"] == {"temperature": 0.7, "top_p": 0.95, "max_tokens": 2048}
    assert config["filter"]["solvability"]["sampling"]["temperature"] == 0.0


def test_tiny_preset_merges_over_full_config():
    config = load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml")
    assert config["generators"]["qwen2-math"]["prompt_style"] == "qwen2-math"  # kept from config.yaml
    assert config["generators"]["qwen2-math"]["model"] == "tiny-lm"  # overridden by the preset
    assert config["generate"]["sampling"]["top_p"] == 0.99


def test_defaults_are_filled():
    config = validate_config({"models": {"m": {"path": "x"}},
                              "generators": {"g": {"model": "m", "prompt_style": "qwen2-math", "questions": 10,
                                                   "training": "none"}},
                              "filter": {"solvability": {"model": "m"}}, "respond": {"model": "m"},
                              "reward": {"model": "m"}})
    assert config["seed"] == 42
    assert config["generate"]["shard_size"] == 10000
    assert config["models"]["m"]["trust_remote_code"] is False


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["generate"].update(shard_size=0), "'generate.shard_size': 0 is less than the minimum of 1"),
    (lambda c: c["respond"].update(model="no-such-model"), "'respond.model': unknown model key 'no-such-model'"),
    (lambda c: c["generators"]["qwen2-math"].update(model="gpt-5"), "'generators.qwen2-math.model': unknown model key"),
    (lambda c: c.update(sede=1), "'sede' was unexpected"),
    (lambda c: c["qpo"]["optimizer"].update(model="gpt-5"), "'qpo.optimizer.model': unknown model key 'gpt-5'"),
    (lambda c: c["respond"].update(model="gpt-4o-mini"), "'respond.model': model 'gpt-4o-mini' uses engine openai"),
    (lambda c: c["models"]["gpt-4o-mini"].pop("base_url"), "'models.gpt-4o-mini.base_url': engine openai needs"),
    (lambda c: c["models"]["gpt-4o-mini"].update(api_key_env="my key"), "'models.gpt-4o-mini.api_key_env'"),
    (lambda c: c["qft"]["hyper"].pop("learning_rate"), "'qft.hyper': 'learning_rate' is a required property"),
    (lambda c: c["qpo"]["optimizer"].update(prompts=["harder"]), "'qpo.optimizer.prompts.0'"),
    (lambda c: c["filter"].update(language="latin"), "'filter.language'"),
    (lambda c: c["respond"].update(n="five"), "'respond.n': 'five' is not of type 'integer'"),
    (lambda c: c["models"]["qwen2-math-7b-instruct"].update(engine="tgi"), "'models.qwen2-math-7b-instruct.engine'"),
    (lambda c: c["generators"]["qwen2-math"].update(prompt_style="llama"), "'generators.qwen2-math.prompt_style'"),
])
def test_bad_config_names_the_key(full_config, mutate, message):
    config = copy.deepcopy(full_config)
    mutate(config)
    with pytest.raises(ConfigError, match=None) as caught:
        validate_config(config)
    assert message in str(caught.value)


def test_tiny_reward_needs_tiny_lm(full_config):
    config = copy.deepcopy(full_config)
    config["models"]["r"] = {"path": "p", "build": "tiny-reward"}
    with pytest.raises(ConfigError, match="models.r.build"):
        validate_config(config)


def test_trust_remote_code_is_off_unless_the_model_turns_it_on(full_config):
    config = validate_config(full_config)
    assert ModelSpec.from_config(config, "qwen2-math-7b-instruct").trust_remote_code is False
    assert ModelSpec.from_config(config, "internlm2-7b-reward").trust_remote_code is True
    assert ModelSpec.from_entry("bare", {"path": "x"}).trust_remote_code is False


def test_no_hard_coded_trust_remote_code_in_the_package():
    offenders = [str(path) for path in (REPO / "scalequest").rglob("*.py")
                 if "trust_remote_code=True" in path.read_text().replace(" ", "")]
    assert offenders == []


def test_file_generator_is_valid_and_model_free(full_config):
    config = copy.deepcopy(full_config)
    config["generators"]["gsm8k"] = {"questions_file": "q.jsonl", "questions": 10}
    assert validate_config(config)["generators"]["gsm8k"]["question_field"] == "question"


def test_generator_with_both_model_and_file_is_rejected(full_config):
    config = copy.deepcopy(full_config)
    config["generators"]["qwen2-math"]["questions_file"] = "q.jsonl"
    with pytest.raises(ConfigError, match="'generators.qwen2-math'"):
        validate_config(config)


def test_the_same_settings_give_the_same_params_in_any_merge_order():
    """A preset loaded by the Snakefile (over config.yaml) and by --configfile (Snakemake starts from
    it, then adds config.yaml's other keys) merge in other key orders; Snakemake compares params
    with their key order, so the validated config is ordered canonically."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    preset = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())
    by_snakefile = merge_into(merge_into({}, base), preset)
    by_command_line = merge_into(merge_into(merge_into({}, preset), base), preset)
    assert json.dumps(by_snakefile) != json.dumps(by_command_line)
    assert json.dumps(validate_config(by_snakefile)) == json.dumps(validate_config(by_command_line))
