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


def test_a_model_spec_takes_the_schemas_defaults():
    """ModelSpec's defaults are the schema's: a spec built in code and one from a bare entry agree."""
    from scalequest.schema import model_entry_defaults

    bare = ModelSpec.from_entry("m", {"path": "p"})
    for name, default in model_entry_defaults().items():
        assert getattr(bare, name) == default, name
    assert bare == ModelSpec(key="m", path="p")
    validated = validate_config({**yaml.safe_load((REPO / "config.yaml").read_text())})
    spec = ModelSpec.from_config(validated, "internlm2-7b-reward")
    assert spec.trust_remote_code is True and spec.dtype == "bfloat16"  # set in config.yaml for that model


# Where config.yaml means to differ from the schema's default (every other value it spells out is
# the default, written there so that a reader sees the setting): a changed default must be changed in
# both places, or added here with its reason.
CONFIG_YAML_CHOICES = {
    "models.*.dtype": "bfloat16 for the 7B models",
    "models.internlm2-7b-reward.trust_remote_code": "the reward model's code is its own",
    "models.gpt-4o-mini.engine": "the optimizer is an API model",
    "models.gpt-4o-mini.concurrency": "an API serves more requests at once",
    "difficulty.enabled": "the full run samples by difficulty",
    "release.decontamination.benchmarks.*.field": "each benchmark's own question field",
    "release.decontamination.benchmarks.*.split": "each benchmark's own split",
    "release.decontamination.benchmarks.*.answer_format": "each benchmark's own gold-answer format",
    "evaluation.enabled": "the full run closes the loop: its default target evaluates the release",
    "evaluation.base_models": "the paper's four base models, keys of config.yaml's models",
    "evaluation.benchmarks": "the benchmarks config.yaml declares",
    "evaluation.sft.nodes": "a 7B model's SFT on 1M pairs x 3 epochs fits a 48 h limit on 2 nodes",
}


def _leaves_with_defaults(value, schema, path=()):
    """(dotted path, value, schema default) of every setting in `value` whose schema has a default."""
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        sub = properties.get(key) or (extra if isinstance(extra, dict) else None)
        if sub is None:
            continue
        if "default" in sub and not isinstance(item, dict):
            yield ".".join((*path, key)), item, sub["default"]
        yield from _leaves_with_defaults(item, sub, (*path, key))


def test_config_yaml_agrees_with_the_schemas_defaults():
    from fnmatch import fnmatch

    from scalequest.schema import load_schema

    leaves = list(_leaves_with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()), load_schema()))
    assert len(leaves) > 80
    drifted = [(path, value, default) for path, value, default in leaves
               if value != default and not any(fnmatch(path, choice) for choice in CONFIG_YAML_CHOICES)]
    assert not drifted, f"config.yaml differs from the schema's default (value, default): {drifted}"
