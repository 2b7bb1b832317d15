"""Bad inputs as a user meets them: each stops the run before any job (or warns) with a message that
names the file, line or key and says what to do.

Each case is checked in-process through the functions the Snakefile calls on the config
(load_config_files: the strict file reader, the merge, validate_config). One case of each kind also
runs through the real snakemake CLI, which proves the wiring: the Snakefile's "Configuration error: "
stop before any job, for config.yaml, a --configfile and the preset.

Files a job reads that are wrong or damaged (a benchmark without gold answers, a model's weights, a shard)
fail that job with such a message; they are checked in-process through the function the job's script calls.

To add a case, add a row to the table of its kind: the text you would write, and the parts the
message must hold."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from test_release import best_rows

from conftest import REPO, copy_workflow, run_snakemake
from scalequest.command_line import command_line_problems
from scalequest.config import ConfigError, load_config_files, load_schema, validate_config
from scalequest.decontam import BenchmarkError, benchmarks_in_use
from scalequest.engines import open_embedder, open_generator, open_scorer
from scalequest.evaluation.items import write_items
from scalequest.models import ModelSpec, WeightsError, check_weights
from scalequest.prefetch import hub_items
from scalequest.records import (
    BEST,
    QUESTIONS,
    ShardFormatError,
    check_shard_layout,
    read_columns,
    read_shard,
    to_table,
    write_shard,
)
from scalequest.stages.dedup import minhash_shard
from scalequest.stats import ShardStats, StatsError, read_stats, stats_path, write_stats
from scalequest.training.launcher import training_job

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


# The snakemake command line's config arguments, checked by the workflow profile (profiles/default) before
# Snakemake reads them: (arguments, files written first, message parts).
BAD_COMMAND_LINES = [
    pytest.param(["--configfile", "my.yaml"], {"my.yaml": "respond:\n\tn: 2\n"},
                 ["my.yaml:2:1: not valid YAML", "indent with spaces"], id="tab-indent"),
    pytest.param(["-n", "--configfile", "my.yaml"], {"my.yaml": "respond: {n: [2}\n"},
                 ["my.yaml:1:", "not valid YAML"], id="yaml-syntax"),
    pytest.param(["--configfile", "my.yaml"], {"my.yaml": ""}, ["my.yaml: the file is empty"], id="empty"),
    pytest.param(["--configfiles", "my.yaml"], {"my.yaml": "- respond: {n: 2}\n"},
                 ["my.yaml: the top level is a list"], id="top-level-list"),
    pytest.param(["--configfile", "nope.yaml"], {}, ["nope.yaml: no such config file"], id="missing"),
    pytest.param(["--configfile", "my.yaml", "plan"], {"my.yaml": "seed: 1\n"},
                 ["'plan' follows --configfile, which reads every word after it as a config file",
                  "snakemake plan --configfile my.yaml", "--configfile=my.yaml"], id="target-after-configfile"),
    pytest.param(["-n", "--configfile", "my.yaml", "results/tiny/release/funnel.json"], {"my.yaml": "seed: 1\n"},
                 ["results/tiny/release/funnel.json: no such config file",
                  "if results/tiny/release/funnel.json is a target, put targets before --configfile"],
                 id="file-target-after-configfile"),
    pytest.param(["--config", "respond.n=3"], {},
                 ["--config respond.n=3: --config sets top-level keys only", "numbers and booleans as text",
                  "`respond: {...}`",
                  "--configfile my.yaml"], id="dotted-key"),
    pytest.param(["-C", "respond={n: 3}"], {}, ["-C respond={n: 3}: --config sets top-level keys only"],
                 id="nested-number"),
    pytest.param(["--config", "evaluation=[{enabled: false}]"], {}, ["--config evaluation=[{enabled: false}]: "],
                 id="nested-boolean"),
    pytest.param(["--config", "seed=3", "plan"], {}, ["'plan' follows --config"], id="target-after-config"),
]
GOOD_COMMAND_LINES = [
    ["--configfile=my.yaml", "plan"], ["plan", "--configfile", "my.yaml", "--cores", "1"],
    ["--configfile", "my.yaml", "presets/tiny.yaml"], ["--config", "seed=3", "results=results/x", "-n"],
    ["--configfile", "my.yaml", "--", "plan"], ["--config", "evaluation={datasets: {first: {stage: respond}}}"],
]


@pytest.mark.parametrize("argv, files, parts", BAD_COMMAND_LINES)
def test_bad_command_line_names_word_file_and_line(in_workdir, argv, files, parts):
    for name, text in files.items():
        (in_workdir / name).write_text(text)
    problems = "\n".join(command_line_problems(argv))
    for part in parts:
        assert part in problems, f"{part!r} not in: {problems}"


@pytest.mark.parametrize("argv", GOOD_COMMAND_LINES)
def test_good_command_line_passes(in_workdir, argv):
    (in_workdir / "my.yaml").write_text("seed: 1\n")
    assert command_line_problems(argv) == []


@pytest.mark.parametrize("profile", [["--profile", "profiles/local"], ["--profile", "slurm"], []],
                         ids=["local", "slurm", "none"])
def test_bad_command_line_stops_snakemake_before_it_reads_the_files(workdir, profile):
    """Through each profile, and with none (Snakemake loads profiles/default, the workflow profile, anyway)."""
    (workdir / "my.yaml").write_text("seed: 1\nrespond:\n\tn: 2\n")
    result = dry_run(workdir, *profile, "--configfile", "my.yaml", "plan")
    assert result.returncode == 1
    for part in ("Configuration error: my.yaml:3:1: not valid YAML",
                 "Configuration error: 'plan' follows --configfile"):
        assert part in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Building DAG" not in result.stderr


def test_an_optional_benchmark_path_you_set_is_required(in_workdir):
    """`optional` holds for the path written beside it (the preset's): a path set over it without
    `optional: true` is required, so that a typo stops the run instead of leaving the benchmark out."""
    def gsm8k(override: str) -> dict:
        text = f"release: {{decontamination: {{benchmarks: {{gsm8k: {override}}}}}}}\n"
        (in_workdir / "override.yaml").write_text(text)
        config = load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml", "override.yaml")
        return config["release"]["decontamination"]["benchmarks"]

    typo = gsm8k("{path: /data/gsm8k_tset.jsonl}")
    assert typo["gsm8k"]["optional"] is False
    used, absent = benchmarks_in_use(typo)
    assert used["gsm8k"]["path"] == "/data/gsm8k_tset.jsonl" and "gsm8k" not in absent  # the run stops on it
    _, absent = benchmarks_in_use(gsm8k("{path: /data/gsm8k_tset.jsonl, optional: true}"))
    assert absent["gsm8k"] == "/data/gsm8k_tset.jsonl"
    assert gsm8k("{field: question}")["gsm8k"]["optional"] is True  # the preset's own path, still optional


def test_a_path_in_a_folder_that_exists_here_is_a_local_model(in_workdir):
    """`models/mine` beside a `models` folder is a folder (not the hub id of owner `models`): a typo in
    it stops the run naming the key, instead of a DNS error from the hub."""
    (in_workdir / "models").mkdir()
    (in_workdir / "override.yaml").write_text("models: {qwen2-math-7b-instruct: {path: models/qwen2-mth}}\n")
    assert_config_error(["'models.qwen2-math-7b-instruct.path': the model folder models/qwen2-mth does not exist"],
                        "config.yaml", "override.yaml")


# ---------------------------------------------------------------- files a job reads

# An evaluated benchmark with no gold answer would score 0.0 for every model: the eval_items job fails.
# (the benchmark file's records, its answer_field, answer_format, message parts)
NO_GOLD_BENCHMARKS = [
    pytest.param([{"question": "q1", "answer": "#### 3"}, {"question": "q2", "answer": "#### 4", "level": 2}],
                 "anwser", "gsm8k",
                 ["release.decontamination.benchmarks.bench.answer_field: benchmark 'bench' has no gold answer",
                  "every model would score 0", "no item of", "bench.jsonl has a field 'anwser'",
                  "(its fields: answer, level, question)"], id="misspelt-field"),
    pytest.param([{"question": "q1", "answer": None}, {"question": "q2", "answer": "  "}, {"question": "q3"}],
                 "answer", "plain",
                 ["benchmarks.bench.answer_field: benchmark 'bench'", "'answer' is absent, null or blank in every item",
                  "(its fields: answer, question)", "or give a file that has them"], id="null-blank-absent"),
    pytest.param([{"question": "q1", "answer": 72}, {"question": "q2", "answer": 5}], "answer", "gsm8k",
                 ["benchmarks.bench.answer_format: benchmark 'bench'", "answer_format gsm8k finds no answer in the "
                  "'answer' of any item", "(e.g. '72')", "Set answer_format to how the answers are written"],
                 id="numbers-read-as-gsm8k"),
    pytest.param([{"problem": "p", "solution": "So x = " + "2" * 200}], "solution", "boxed",
                 ["benchmarks.bench.answer_format", "answer_format boxed finds no answer", "(e.g. 'So x = 222",
                  "…')"], id="solution-without-box"),
    pytest.param([{"question": "q1"}, {"question": "q2", "answer": "the answer is 4"}], "answer", "gsm8k",
                 ["benchmarks.bench.answer_format", "(e.g. 'the answer is 4')"], id="some-absent-rest-unreadable"),
]


@pytest.mark.parametrize("records, field, answer_format, parts", NO_GOLD_BENCHMARKS)
def test_a_benchmark_without_gold_answers_fails_eval_items(tmp_path, records, field, answer_format, parts):
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    question = "problem" if "problem" in records[0] else "question"
    entry = {"path": str(path), "field": question, "answer_field": field, "answer_format": answer_format}
    with pytest.raises(BenchmarkError) as raised:
        write_items("bench", entry, tmp_path / "bench.parquet")
    for part in parts:
        assert part in str(raised.value), f"{part!r} not in: {raised.value}"
    assert not (tmp_path / "bench.parquet").exists()


def tensors_file(folder: Path) -> Path:
    """A model folder with a small safetensors file: a few tensors, as save_pretrained writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    save_file({"embed": np.ones((64, 16), np.float32), "head": np.zeros((16, 8), np.float32)},
              folder / "model.safetensors", metadata={"format": "pt"})
    return folder / "model.safetensors"


def cut_in_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def cut_in_header(path: Path) -> None:
    os.truncate(path, 40)


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def garbage_header(path: Path) -> None:
    path.write_bytes((30).to_bytes(8, "little") + b"<html>503 Service Unavailable</html>")


def bytes_appended(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\0" * 100)


WEIGHT_DAMAGES = [pytest.param(damage, id=damage.__name__)
                  for damage in (cut_in_half, cut_in_header, emptied, garbage_header, bytes_appended)]
# Where the weights are, and what to do: (folder under tmp_path, whether Snakemake made it, message parts).
WEIGHT_PLACES = [
    pytest.param("results/models/tiny-lm", True,
                 ["The workflow made", "results/models/tiny-lm (a built or trained model): delete the folder and run "
                  "again"], id="built"),
    pytest.param("my-model", False,
                 ["my-model is a model folder of your own (models.m.path): save or copy the model into it again"],
                 id="own-folder"),
    pytest.param("hub/models--owner--name/snapshots/0123abc", False,
                 ["hub/models--owner--name (the copy of owner/name in the Hugging Face cache), then run again adding "
                  "`--forcerun prefetch`"], id="hub-cache"),
]


@pytest.mark.parametrize("damage", WEIGHT_DAMAGES)
@pytest.mark.parametrize("folder, made, parts", WEIGHT_PLACES)
def test_damaged_weights_name_the_model_the_file_and_what_to_do(tmp_path, monkeypatch, damage, folder, made, parts):
    """Checked from the files' headers before any engine loads them: safetensors' own SafetensorError names
    neither the model nor the file."""
    monkeypatch.chdir(tmp_path)
    weights = tensors_file(tmp_path / folder)
    if made:
        (weights.parent / ".snakemake_timestamp").touch()
    path = str(weights.parent)
    if folder.startswith("hub/"):
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        (tmp_path / "hub" / "models--owner--name" / "refs").mkdir()
        (tmp_path / "hub" / "models--owner--name" / "refs" / "main").write_text(weights.parent.name)
        path = "owner/name"
    damage(weights)
    with pytest.raises(WeightsError) as raised:
        open_generator(ModelSpec(key="m", path=path, engine="hf"))
    message = str(raised.value)
    for part in [f"model 'm': cannot read its weights file {weights}", "cut short or damaged", *parts]:
        assert part in message, f"{part!r} not in: {message}"


def test_damaged_weights_stop_every_loader_before_it_loads(tmp_path):
    """The engines (hf and vLLM: the check comes before vLLM is imported) and the training launcher (before
    any rank starts) share the one check."""
    weights = tensors_file(tmp_path / "m")
    cut_in_half(weights)
    spec = ModelSpec(key="m", path=str(weights.parent), engine="vllm")
    for load in (lambda: open_scorer(spec), lambda: open_embedder(spec), lambda: open_generator(spec),
                 lambda: training_job(kind="sft", model={"key": "m", "entry": {"path": spec.path}}, data="x.jsonl",
                                      prompt_style=None, hyper={}, seed=0, deepspeed="none", min_examples=None,
                                      launch={}, out=tmp_path / "out", checkpoint_minutes=30)):
        with pytest.raises(WeightsError, match=f"model 'm': cannot read its weights file {weights}"):
            load()
    assert not (tmp_path / "out").exists()


def test_sound_weights_and_models_not_on_disk_pass_the_check(tmp_path, monkeypatch):
    """An intact file, a folder without safetensors, an API model and a hub id not in the cache are left
    to their loader."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    tensors_file(tmp_path / "sound")
    (tmp_path / "no-weights").mkdir()
    for path, engine in ((tmp_path / "sound", "hf"), (tmp_path / "no-weights", "vllm"), ("gpt-4o-mini", "openai"),
                         ("owner/uncached", "hf")):
        check_weights(ModelSpec(key="m", path=str(path), engine=engine))


def test_damaged_tiny_model_names_its_key_and_folder(tmp_path, tiny_models):
    """A real model: the demo's tiny LM with its weights cut short, through the hf engine."""
    shutil.copytree(tiny_models / "tiny-lm", tmp_path / "tiny-lm")
    cut_in_half(tmp_path / "tiny-lm" / "model.safetensors")
    with pytest.raises(WeightsError, match=f"model 'tiny-lm': cannot read its weights file {tmp_path}/tiny-lm/model."
                                           "safetensors .* The workflow made .* delete the folder and run again"):
        open_generator(ModelSpec(key="tiny-lm", path=str(tmp_path / "tiny-lm"), engine="hf"))


def best_shard(folder: Path) -> Path:
    """A best shard `best/g/00000.parquet` with its sidecar, as the best rule writes them."""
    path = folder / "best" / "g" / "00000.parquet"
    path.parent.mkdir(parents=True)
    write_shard(to_table(best_rows([(f"What is {i} + 1?", 0.5) for i in range(50)]), BEST), BEST, path)
    stats = ShardStats("best", "g", "00000", None, {})
    stats.questions.keep(50)
    write_stats(stats_path(path), stats)
    return path


def zeroed_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100:150] = bytes(50)  # in the first data page: the footer still reads
    path.write_bytes(bytes(data))


def overwritten_with_text(path: Path) -> None:
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 8057\n")


def another_stage(path: Path) -> None:
    write_shard(to_table([{**{k: v for k, v in best_rows([("q", 0.5)])[0].items() if k in QUESTIONS.columns},
                           "gen_tokens": 3}], QUESTIONS), QUESTIONS, path)


# A damaged best shard, read as the jobs after best read it: (damage, how it is read, message parts).
DAMAGED_SHARDS = [
    pytest.param(cut_in_half, lambda path: read_shard(path, BEST), ["not a readable Parquet shard"], id="cut-read"),
    pytest.param(emptied, lambda path: read_columns(path, "best", ["id"]), ["cannot read columns ['id']",
                                                                           "Parquet file size is 0 bytes"],
                 id="empty-release-ids"),
    pytest.param(cut_in_half, lambda path: check_shard_layout(path, BEST), ["not a readable Parquet shard"],
                 id="cut-layout"),
    pytest.param(zeroed_middle, lambda path: read_shard(path, BEST), ["not a readable Parquet shard (OSError: "],
                 id="zeroed-page"),
    pytest.param(overwritten_with_text, lambda path: minhash_shard(best_path=path, out=path.with_name("m.parquet"),
                                                                   ngram=3, num_perm=8, bands=2, seed=1),
                 ["not a readable Parquet shard"], id="text-minhash-job"),
    pytest.param(another_stage, lambda path: read_shard(path, BEST), ["holds stage 'generate', expected 'best'"],
                 id="another-stage"),
]


@pytest.mark.parametrize("damage, read, parts", DAMAGED_SHARDS)
def test_a_damaged_shard_says_to_delete_it_and_its_sidecar(tmp_path, damage, read, parts):
    path = best_shard(tmp_path)
    damage(path)
    with pytest.raises(ShardFormatError) as raised:
        read(path)
    message = " ".join(str(raised.value).split())
    for part in [f"{path}: ", *parts, f"Delete it and its sidecar {stats_path(path)}, and run again: the workflow "
                 "makes both anew", "rule all, the default target, lists every shard and sidecar"]:
        assert part in message, f"{part!r} not in: {message}"


def test_a_damaged_sidecar_says_to_delete_it_and_its_shard(tmp_path):
    sidecar = stats_path(best_shard(tmp_path))
    sidecar.write_text(sidecar.read_text()[:40])  # cut short
    with pytest.raises(StatsError, match=rf"{sidecar}: unreadable stats sidecar .*Delete it and its shard "
                                         rf"{sidecar.with_name('00000.parquet')}, and run again"):
        read_stats(sidecar)
