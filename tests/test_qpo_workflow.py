"""The QPO optimizer as the workflow sees it: an API optimizer that cannot serve stops the run
before any training or GPU job starts, and the plan never needs it."""
from __future__ import annotations

import json

import pytest

from conftest import OPENAI_MODEL, copy_workflow, free_port, run_snakemake, sidecars, tiny_workflow
from scalequest.funnel import SHARD_STAGES
from scalequest.stats import read_stats

KEY_ENV = "SCALEQUEST_TEST_OPTIMIZER_KEY"
ONE_SHARD_EACH = "generate: {shard_size: 128}\nevaluation: {shards: {tiny: 1}}\n"  # the preset's 128 questions each


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


@pytest.mark.workflow
@pytest.mark.vllm
def test_vllm_demo_with_an_api_optimizer_never_writes_the_key(tmp_path, tiny_models, openai_server, monkeypatch):
    """The demo through vLLM, its QPO optimizer behind vLLM's OpenAI-compatible server: every
    stage runs, the funnel chains, and the API key is in no output, log, card or cache.

    Slow: the whole workflow, each engine job starting vLLM (about 3 minutes). A generator's questions
    make one shard here (ONE_SHARD_EACH), and the benchmark's answers one job: each job's vLLM start
    costs more than its work, and the hf demo runs the many-shard case."""
    monkeypatch.setenv(KEY_ENV, openai_server.key)
    workdir = tiny_workflow(tmp_path / "vllm-run", tiny_models)
    extra = api_optimizer(workdir, openai_server.base_url)
    (workdir / extra).write_text((workdir / extra).read_text().replace("gpt-4o-mini", OPENAI_MODEL))
    (workdir / "one-shard-each.yaml").write_text(ONE_SHARD_EACH)
    result = run_snakemake(workdir, "--profile", "profiles/local", "--configfile", "presets/tiny.yaml",
                           "presets/tiny-vllm.yaml", extra, "one-shard-each.yaml")
    results = workdir / "results"
    funnel = json.loads((results / "tiny-vllm/release/funnel.json").read_text())
    assert funnel["released_pairs"] > 0
    assert "results/tiny/models/tiny-lm (QFT+QPO, generator qwen2-math, seed 42)" in funnel["models"]["generator"]
    loaded = sidecars(results / "tiny-vllm")
    for upstream, downstream in zip(SHARD_STAGES, SHARD_STAGES[1:]):
        for key in loaded[downstream]:
            assert loaded[downstream][key]["questions"].total == loaded[upstream][key]["questions"].kept
    for gen in ("qwen2-math", "deepseek-math"):
        pairs = read_stats(results / f"tiny-vllm/train/qpo/{gen}/pairs.stats.json")
        assert pairs["models"]["optimizer"] == f"{OPENAI_MODEL} @ {openai_server.base_url}"
        assert pairs["questions"].kept >= 16
    assert any((results / "tiny-vllm/cache/optimizer").rglob("*.json"))
    written = [path for path in results.rglob("*") if path.is_file()] + [
        path for path in (workdir / ".snakemake").rglob("*") if path.is_file()]
    assert len(written) > 100
    for path in written:
        assert openai_server.key.encode() not in path.read_bytes(), path
    assert openai_server.key not in result.stdout + result.stderr
