"""The QPO optimizer as the workflow sees it: an API optimizer that cannot serve stops the run
before any training or GPU job starts, the plan never needs it, and the rehearsal of config.yaml
(presets/rehearsal.yaml) runs with one and never writes its key."""
from __future__ import annotations

import json

import pytest

from conftest import OPENAI_MODEL, REPO, copy_workflow, free_port, run_snakemake, sidecars, tiny_workflow
from internlm2_reference import reference_rewards, reward_model_ids
from scalequest.funnel import SHARD_STAGES
from scalequest.prompts import reward_messages
from scalequest.records import REWARDED, read_shard
from scalequest.stats import read_stats

KEY_ENV = "SCALEQUEST_TEST_OPTIMIZER_KEY"


def api_optimizer(workdir, base_url: str) -> str:
    (workdir / "optimizer.yaml").write_text(
        "models:\n"
        f"  api-optimizer: {{path: gpt-4o-mini, engine: openai, base_url: '{base_url}', api_key_env: {KEY_ENV}}}\n"
        "qpo:\n  optimizer: {model: api-optimizer}\n")
    return "optimizer.yaml"


@pytest.mark.parametrize("key, message", [
    ("sk-test-unreachable", "cannot reach http://127.0.0.1:{port}/v1"),
    (None, f"the environment variable {KEY_ENV}, which holds its API key, is not set"),
])
def test_optimizer_that_cannot_serve_stops_before_any_job(tmp_path, monkeypatch, key, message):
    port = free_port()  # nothing listens there
    if key:
        monkeypatch.setenv(KEY_ENV, key)
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    workdir = copy_workflow(tmp_path / "wf")
    extra = api_optimizer(workdir, f"http://127.0.0.1:{port}/v1")
    # One core: the check (highest priority) is the first job, and its failure ends the run.
    result = run_snakemake(workdir, "--profile", "profiles/local", "--cores", "1", "--configfile",
                           "presets/tiny.yaml", extra, check=False, timeout=300)
    output = result.stdout + result.stderr
    log = (workdir / "results" / "tiny" / "logs" / "check_optimizer.log").read_text()
    assert result.returncode != 0 and "Error in rule check_optimizer" in output
    assert "model 'api-optimizer'" in log and message.format(port=port) in log
    assert "Finished jobid" not in output and not (workdir / "results" / "tiny" / "models").exists()
    if key:
        assert key not in output + log


def test_dry_run_and_plan_do_not_contact_the_optimizer(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    workdir = copy_workflow(tmp_path / "wf")
    extra = api_optimizer(workdir, f"http://127.0.0.1:{free_port()}/v1")
    dry_run = run_snakemake(workdir, "-n", "--profile", "profiles/local", "--configfile", "presets/tiny.yaml", extra,
                            timeout=300)
    assert "check_optimizer" in dry_run.stdout and "qpo_rewrite" in dry_run.stdout
    run_snakemake(workdir, "plan", "--cores", "1", "--configfile", extra, timeout=300)
    assert "| qpo_rewrite | 2 |" in (workdir / "results" / "plan.md").read_text()


def rehearsal_config() -> dict:
    """The rehearsal's config: config.yaml with the tiny preset and presets/rehearsal.yaml over it, validated."""
    from scalequest.config import load_config_files, validate_config

    return validate_config(load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml",
                                             REPO / "presets" / "rehearsal.yaml"))


@pytest.mark.workflow
@pytest.mark.vllm
def test_rehearsal_with_an_api_optimizer_never_writes_the_key(tmp_path, tiny_models, openai_server, monkeypatch):
    """The rehearsal (presets/rehearsal.yaml: every model of config.yaml replaced by a tiny twin of its
    architecture, in its role, through vLLM) with its QPO optimizer behind vLLM's OpenAI-compatible server, as
    config.yaml's is an API: every stage runs, the funnel chains, each twin does its model's work, the release is
    not empty, its rewards are the InternLM2 twin's own, and the API key is in no output, log, card or cache.

    Slow: the whole workflow, each engine job starting vLLM (5 to 7 minutes alone on 2 cores). A generator's
    questions make one shard here (the preset), and the benchmark's answers one job per model: each job's vLLM
    start costs more than its work, and the hf demo runs the many-shard case."""
    monkeypatch.setenv(KEY_ENV, openai_server.key)
    workdir = tiny_workflow(tmp_path / "rehearsal", tiny_models)
    extra = api_optimizer(workdir, openai_server.base_url)
    (workdir / extra).write_text((workdir / extra).read_text().replace("gpt-4o-mini", OPENAI_MODEL))
    result = run_snakemake(workdir, "--profile", "profiles/local", "--configfile", "presets/tiny.yaml",
                           "presets/rehearsal.yaml", extra, timeout=1500)
    config = rehearsal_config()
    results = workdir / config["results"]
    models, seed = config["models"], config["seed"]
    twin = {key: models[key]["path"] for key in ("llama-twin", "mistral-twin", "internlm2-reward-twin")}

    funnel = json.loads((results / "release/funnel.json").read_text())
    assert funnel["released_pairs"] > 0 and any((results / "release/data").glob("*.parquet"))
    # Each twin in the role its architecture plays in config.yaml, as the release names its models.
    assert funnel["models"]["generator"] == sorted([
        f"{models['tiny-lm']['path']} (QFT+QPO, generator qwen2-math, seed {seed})",
        f"{twin['llama-twin']} (QFT+QPO, generator deepseek-math, seed {seed})"])
    assert funnel["models"]["difficulty"] == [f"{twin['llama-twin']} (difficulty scorer, seed {seed})"]
    assert funnel["models"]["reward"] == [twin["internlm2-reward-twin"]]
    assert funnel["models"]["judge"] == funnel["models"]["responder"] == [models["tiny-lm"]["path"]]
    scores = json.loads((results / "evaluation/scores.json").read_text())
    assert sorted((row["base_path"], row["dataset"]) for row in scores["rows"]) == sorted(
        [(models[key]["path"], "scalequest") for key in config["evaluation"]["base_models"]]
        + [(models["tiny-lm"]["path"], "none")])
    assert all(row["scores"]["tiny"]["items"] == 1000 for row in scores["rows"])

    loaded = sidecars(results)
    for upstream, downstream in zip(SHARD_STAGES, SHARD_STAGES[1:]):
        for key in loaded[downstream]:
            assert loaded[downstream][key]["questions"].total == loaded[upstream][key]["questions"].kept
    for gen in config["generators"]:
        pairs = read_stats(results / f"train/qpo/{gen}/pairs.stats.json")
        assert pairs["models"]["optimizer"] == f"{OPENAI_MODEL} @ {openai_server.base_url}"
        assert pairs["questions"].kept >= config["qpo"]["min_pairs"]
        # The reward scores are the InternLM2 twin's v_head at its reward token, computed from its files here.
        rows = read_shard(results / f"reward/{gen}/00000.parquet", REWARDED).to_pylist()[:3]
        chats = [reward_messages(row["question"], response) for row in rows for response in row["responses"]]
        folder = workdir / twin["internlm2-reward-twin"]
        expected = reference_rewards(folder, reward_model_ids(folder, chats, models["internlm2-reward-twin"]
                                                              ["max_model_len"]))
        assert [score for row in rows for score in row["scores"]] == pytest.approx(expected, abs=1e-4)
    assert any((results / "cache/optimizer").rglob("*.json"))
    written = [path for path in (workdir / "results").rglob("*") if path.is_file()] + [
        path for path in (workdir / ".snakemake").rglob("*") if path.is_file()]
    assert len(written) > 100
    for path in written:
        assert openai_server.key.encode() not in path.read_bytes(), path
    assert openai_server.key not in result.stdout + result.stderr
