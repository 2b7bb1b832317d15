"""Bad inputs as a user meets them: each stops the run before any job (or warns) with a message that
names the file, line or key and says what to do.

Each case is checked in-process through the functions the Snakefile calls on the config
(load_config_files: the strict file reader, the merge, validate_config). One case of each kind also
runs through the real snakemake CLI, which proves the wiring: the Snakefile's "Configuration error: "
stop before any job, for config.yaml, a --configfile and the preset.

To add a case, add a row to the table of its kind: the text you would write, and the parts the
message must hold."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, copy_workflow, run_snakemake
from scalequest.config import ConfigError, load_config_files, load_schema, validate_config
from scalequest.prefetch import hub_items

# Config files with a problem of their own, as the workflow's config.yaml: (file text, message parts).
BAD_CONFIG_FILES = [
    pytest.param("seed: 1\nrespond:\n  n: [1\n",
                 ["config.yaml:4:1: not valid YAML", "flow sequence at line 3, column 6"], id="yaml-syntax"),
    pytest.param("respond:\n\tn: 2\n", ["config.yaml:2:1: not valid YAML", "indent with spaces"], id="tab-indent"),
    pytest.param("", ["config.yaml: the file is empty"], id="empty"),
    pytest.param("# only a comment\n", ["config.yaml: the file is empty"], id="only-comments"),
    pytest.param("- seed: 1\n", ["config.yaml: the top level is a list", "`key: value` lines"], id="top-level-list"),
    pytest.param("seed: 1\nresults: r\nseed: 2\n",
                 ["config.yaml:3: duplicate key 'seed' (first at line 1)", "remove one"], id="duplicate-key"),
    pytest.param("respond:\n  n: 2\n  model: m\n  n: 3\n",
                 ["config.yaml:4: duplicate key 'n' (first at line 2)"], id="duplicate-nested-key"),
]

# Settings over config.yaml (--configfile): (override text, message parts).
BAD_OVERRIDES = [
    # whole-number floats where the schema says integer
    pytest.param("generators: {qwen2-math: {questions: 128.0}}",
                 ["'generators.qwen2-math.questions': 128.0 is not an integer (write 128)"], id="float-questions"),
    pytest.param("generate: {shard_size: 64.0}", ["'generate.shard_size': 64.0 is not an integer (write 64)"],
                 id="float-shard-size"),
    pytest.param("respond: {n: 2.0}", ["'respond.n': 2.0 is not an integer (write 2)"], id="float-n"),
    # which form of a oneOf/anyOf entry was meant
    pytest.param("generators: {qwen2-math: {questions_file: q.jsonl}}",
                 ["'generators.qwen2-math': has both model and questions_file",
                  "a generator is either a model (model, prompt_style) or a file (questions_file)"],
                 id="model-and-file"),
    pytest.param("generators: {mine: {model: qwen2-math-7b-instruct, questions: 10}}",
                 ["'generators.mine': a model generator needs prompt_style (qwen2-math or deepseek-math)"],
                 id="no-prompt-style"),
    pytest.param("generators: {mine: {questions: 10}}", ["'generators.mine': needs model or questions_file"],
                 id="generator-neither"),
    pytest.param("generators: {mine: {questions_file: q.jsonl, training: qft, questions: 10}}",
                 ["'generators.mine': a file generator takes no training"], id="file-generator-training"),
    pytest.param("seeds: {sources: [{name: s, path: s.jsonl, hub: openai/gsm8k}]}",
                 ["'seeds.sources.0': has both path and hub",
                  "a seed source is a JSONL file (path), a hub dataset (hub) or a tiny corpus (tiny)"],
                 id="source-path-and-hub"),
    pytest.param("seeds: {sources: [{name: s, field: q}]}", ["'seeds.sources.0': needs path, hub or tiny"],
                 id="source-neither"),
    pytest.param("release: {decontamination: {benchmarks: {mine: {field: q}}}}",
                 ["'release.decontamination.benchmarks.mine': needs path or hub",
                  "a benchmark is either a JSONL file (path) or a hub dataset (hub)"], id="benchmark-neither"),
    # a local model path that is no model folder (path-like: absolute, ./, ~, or more than one /)
    pytest.param("models: {qwen2-math-7b-instruct: {path: /no/such/models/qwen2-math}}",
                 ["'models.qwen2-math-7b-instruct.path': the model folder /no/such/models/qwen2-math does not exist"],
                 id="absolute-path-typo"),
    pytest.param("models: {internlm2-7b-reward: {path: models/internlm/reward}}",
                 ["'models.internlm2-7b-reward.path': the model folder models/internlm/reward does not exist"],
                 id="relative-path-typo"),
    # difficulty keep rule
    pytest.param("difficulty: {keep: {bins: [0.0, 0.5, 0.3, 1.0]}}",
                 ["'difficulty.keep.bins': edges must increase", "(0.3 follows 0.5)"], id="decreasing-bins"),
    pytest.param("difficulty: {keep: {bins: [0.0, 0.5, 0.5, 1.0]}}",
                 ["'difficulty.keep.bins': edges must increase", "(0.5 follows 0.5)"], id="repeated-bin-edge"),
    pytest.param("difficulty: {keep: {rule: count}}", ["'difficulty.keep.count': rule count needs a count"],
                 id="count-rule-without-count"),
    pytest.param("difficulty: {scorer: {model: no-such-base}}",
                 ["'difficulty.scorer.model': unknown model key 'no-such-base'"], id="unknown-scorer"),
    # schema bounds, unknown keys and model keys
    pytest.param("generate: {shard_size: 0}", ["'generate.shard_size': 0 is less than the minimum of 1"],
                 id="zero-shard-size"),
    pytest.param("respond: {model: qwen3-math}", ["'respond.model': unknown model key 'qwen3-math'"],
                 id="unknown-model-key"),
    pytest.param("filter: {langauge: ascii}", ["'langauge' was unexpected"], id="misspelt-key"),
    pytest.param("release: {near_dup: {bands: 7}}",
                 ["'release.near_dup': num_perm (120) must be a multiple of bands (7)"], id="bands"),
]

# Files in a local model folder, for `models.qwen2-math-7b-instruct.path: ./my-model`: (files, message parts).
BAD_MODEL_FOLDERS = [
    pytest.param({"tokenizer.json": "{}"}, ["./my-model has no config.json"], id="no-config"),
    pytest.param({"config.json": "{}", "vocab.txt": "a\n"},
                 ["./my-model has no tokenizer files (tokenizer.json, tokenizer_config.json or tokenizer.model)"],
                 id="no-tokenizer"),
]

# Settings a rule does not read: the run goes on, with one warning. (override text, warning parts)
IGNORED_SETTINGS = [
    pytest.param("difficulty: {keep: {rule: count, count: 100, distribution: [1, 1, 1, 1, 1]}}",
                 ["'difficulty.keep.distribution' ([1, 1, 1, 1, 1]) is ignored: rule count does not read it"],
                 id="distribution-with-count"),
    pytest.param("difficulty: {keep: {rule: count, count: 100, min_score: 0.3}}",
                 ["'difficulty.keep.min_score' (0.3) is ignored: rule count does not read it (it reads count)"],
                 id="min-score-with-count"),
    pytest.param("difficulty: {keep: {rule: none, count: 100}}",
                 ["'difficulty.keep.count' (100) is ignored: rule none does not read it"], id="count-with-none"),
]


def dry_run(workdir: Path, *args: str):
    return run_snakemake(workdir, "-n", *args, check=False, timeout=300)


def assert_stops_with(result, parts: list[str]) -> None:
    """A real snakemake run stopped before any job, with a message holding `parts`."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Configuration error: " in output, output[-3000:]
    for part in parts:
        assert part in output, f"{part!r} not in:\n{output[-3000:]}"


def assert_config_error(parts: list[str], *files: str) -> None:
    """Reading `files` (in the current folder, later over earlier) as the Snakefile reads them raises
    ConfigError with a message holding `parts`."""
    with pytest.raises(ConfigError) as raised:
        load_config_files(*files)
    for part in parts:
        assert part in str(raised.value), f"{part!r} not in: {raised.value}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "workflow")


@pytest.fixture
def in_workdir(workdir: Path, monkeypatch) -> Path:
    """The workflow copy as the current folder: config paths are relative to it, as for snakemake."""
    monkeypatch.chdir(workdir)
    return workdir


@pytest.mark.parametrize("text, parts", BAD_CONFIG_FILES)
def test_bad_config_file_names_file_and_line(in_workdir, text, parts):
    (in_workdir / "config.yaml").write_text(text)
    assert_config_error(parts, "config.yaml")


def test_bad_config_file_stops_snakemake_before_any_job(workdir):
    text, parts = BAD_CONFIG_FILES[0].values
    (workdir / "config.yaml").write_text(text)
    assert_stops_with(dry_run(workdir), parts)


def test_duplicate_key_in_a_configfile_names_both_lines(workdir):
    (workdir / "override.yaml").write_text("respond: {n: 4}\nseed: 1\nrespond: {n: 6}\n")
    assert_stops_with(dry_run(workdir, "--configfile", "override.yaml"),
                      ["override.yaml:3: duplicate key 'respond' (first at line 1)"])


def test_duplicate_key_in_the_preset_names_both_lines(workdir):
    preset = workdir / "presets" / "tiny.yaml"
    lines = preset.read_text().splitlines()
    first = next(number for number, line in enumerate(lines, start=1) if line.startswith("results:"))
    preset.write_text("\n".join([*lines, "results: results/other", ""]))
    assert_stops_with(dry_run(workdir, "--profile", "profiles/local"),
                      [f"tiny.yaml:{len(lines) + 1}: duplicate key 'results' (first at line {first})"])


@pytest.mark.parametrize("override, parts", BAD_OVERRIDES)
def test_bad_setting_names_the_key(in_workdir, override, parts):
    (in_workdir / "override.yaml").write_text(override + "\n")
    assert_config_error(parts, "config.yaml", "override.yaml")


def test_bad_setting_stops_snakemake_before_any_job(workdir):
    override, parts = BAD_OVERRIDES[0].values
    (workdir / "override.yaml").write_text(override + "\n")
    assert_stops_with(dry_run(workdir, "--configfile", "override.yaml"), parts)
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("files, parts", BAD_MODEL_FOLDERS)
def test_incomplete_model_folder_is_named(in_workdir, files, parts):
    for name, text in files.items():
        (in_workdir / "my-model" / name).parent.mkdir(exist_ok=True)
        (in_workdir / "my-model" / name).write_text(text)
    (in_workdir / "override.yaml").write_text("models: {qwen2-math-7b-instruct: {path: ./my-model}}\n")
    assert_config_error(["'models.qwen2-math-7b-instruct.path': ", *parts], "config.yaml", "override.yaml")


@pytest.mark.parametrize("override, parts", IGNORED_SETTINGS)
def test_ignored_setting_warns(in_workdir, capsys, override, parts):
    (in_workdir / "override.yaml").write_text(override + "\n")
    load_config_files("config.yaml", "override.yaml")
    warned = capsys.readouterr().err
    assert warned.count("Configuration warning: ") == 1, warned
    for part in parts:
        assert part in warned


def test_ignored_setting_warns_once_and_snakemake_goes_on(workdir):
    override, parts = IGNORED_SETTINGS[0].values
    (workdir / "override.yaml").write_text(override + "\n")
    result = dry_run(workdir, "--configfile", "override.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("Configuration warning: ") == 1, result.stderr[-3000:]
    for part in parts:
        assert part in result.stderr


def test_bad_jsonl_line_says_at_once(workdir):
    """A control character in a questions file: json's message ends in "at", the column follows."""
    (workdir / "q.jsonl").write_text('{"question": "What is 1+1?"}\n{"question": "What\tis 2+2?"}\n')
    (workdir / "override.yaml").write_text("generators: {mine: {questions_file: q.jsonl, questions: 2}}\n")
    result = run_snakemake(workdir, "results/generate/mine/00000.parquet", "--cores", "1", "--show-failed-logs",
                           "--configfile", "override.yaml", check=False, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "q.jsonl:2: not valid JSON (Invalid control character at column 19)" in output, output[-3000:]
    assert "at at" not in output


def test_paths_of_built_api_and_hub_models_are_not_checked(tmp_path, monkeypatch):
    """Built models are made by the workflow, an openai path is a name at the endpoint, a hub id is
    fetched: none of them is a folder to check; an existing folder is local, not fetched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    (tmp_path / "mine" / "tokenizer_config.json").write_text("{}")
    config = load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml")  # builds ./results/tiny/...
    config["models"]["api"] = {"path": "org/team/tiny-lm", "engine": "openai", "base_url": "http://localhost:1/v1"}
    config["models"]["mine"] = {"path": "mine"}
    config["models"]["hub"] = {"path": "owner/name"}
    config.update(qpo={**config["qpo"], "optimizer": {**config["qpo"]["optimizer"], "model": "api"}},
                  respond={**config["respond"], "model": "mine"}, reward={"model": "hub"})
    assert [model["repo"] for model in hub_items(validate_config(config))["models"]] == ["owner/name"]


def test_every_schema_alternative_is_titled():
    """The messages of oneOf/anyOf entries name the form meant from the titles (and first required key);
    an anyOf under `not` only lists the keys a form rules out."""
    def alternatives(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("oneOf", "anyOf"):
                    yield node, value
                if key != "not":
                    yield from alternatives(value)
        elif isinstance(node, list):
            for item in node:
                yield from alternatives(item)

    found = list(alternatives(load_schema()))
    assert found
    for parent, forms in found:
        assert "title" in parent and all("title" in form and form.get("required") for form in forms), parent


def test_a_dry_run_says_the_api_optimizer_will_stop_the_run(workdir):
    """The full-scale optimizer's key variable unset, and an endpoint that does not answer: the dry
    run plans every job and warns that the real run will stop at check_optimizer."""
    (workdir / "override.yaml").write_text("models: {gpt-4o-mini: {api_key_env: NO_SUCH_KEY_VARIABLE, "
                                           "base_url: 'http://127.0.0.1:9/v1'}}\n")
    result = dry_run(workdir, "--configfile", "override.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    for part in ("Warning: model 'gpt-4o-mini': the environment variable NO_SUCH_KEY_VARIABLE, which holds its API "
                 "key, is not set", "Warning: model 'gpt-4o-mini': http://127.0.0.1:9/v1 did not accept a connection",
                 "the run will stop at rule check_optimizer, before any job"):
        assert part in result.stderr, result.stderr[-3000:]
