"""The workflow end to end through the real snakemake CLI, on the tiny preset."""
import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from conftest import copy_workflow, job_counts, run_snakemake, tiny_workflow
from scalequest.funnel import SHARD_STAGES
from scalequest.records import SCORED, read_shard
from scalequest.stats import read_stats

LOCAL = ("--profile", "profiles/local")
RELEASE = "results/tiny/release"


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory, tiny_models):
    """The demo as a user runs it: `snakemake --profile profiles/local` (hf engine)."""
    workdir = tiny_workflow(tmp_path_factory.mktemp("hf-run"), tiny_models)
    result = run_snakemake(workdir, *LOCAL)
    assert "Dataset: results/tiny/release/data" in result.stdout + result.stderr
    return workdir


def sidecars(results_dir):
    return {stage: {(p.parent.name, p.name.split(".")[0]): read_stats(p)
                    for p in sorted((results_dir / stage).glob("*/*.stats.json"))}
            for stage in SHARD_STAGES}


def release_bytes(release_dir):
    files = sorted((release_dir / "data").glob("*.parquet"))
    return {f.name: f.read_bytes() for f in files} | {
        name: (release_dir / name).read_bytes() for name in ("README.md", "funnel.json")}


def test_release_is_a_loadable_dataset_with_card(hf_run):
    release = hf_run / RELEASE
    dataset = load_dataset("parquet", data_files=str(release / "data" / "*.parquet"), split="train")
    funnel = json.loads((release / "funnel.json").read_text())
    assert len(dataset) == funnel["released_pairs"] > 0
    assert {"question", "response", "score", "margin", "generator"} <= set(dataset.column_names)
    assert set(dataset["generator"]) == {"qwen2-math", "deepseek-math"}
    card = (release / "README.md").read_text()
    assert "path: data/train-*.parquet" in card
    for entry in funnel["stages"]:
        counts = entry["questions"]
        assert f"| {entry['stage']} | question | {counts['in']} | {counts['kept']} |" in card


def test_funnel_is_conserved_at_every_stage_and_shard(hf_run):
    loaded = sidecars(hf_run / "results" / "tiny")
    assert all(len(loaded[stage]) == 4 for stage in SHARD_STAGES)
    for stage, shards in loaded.items():
        for key, payload in shards.items():
            for unit in ("questions", "responses"):
                if unit in payload:
                    funnel = payload[unit]
                    assert funnel.total == funnel.kept + sum(funnel.dropped.values()), (stage, key, unit)
    for upstream, downstream in zip(SHARD_STAGES, SHARD_STAGES[1:]):
        for key in loaded[downstream]:
            assert loaded[downstream][key]["questions"].total == loaded[upstream][key]["questions"].kept
    generated = sum(p["questions"].total for p in loaded["generate"].values())
    assert generated == 2 * 128
    funnel = json.loads((hf_run / RELEASE / "funnel.json").read_text())
    best_kept = sum(p["questions"].kept for p in loaded["best"].values())
    release_stage = funnel["stages"][-1]["questions"]
    assert release_stage["in"] == best_kept
    assert funnel["released_pairs"] == best_kept - release_stage["dropped"]["duplicate"]
    dropped = defaultdict(int)
    for entry in funnel["stages"]:
        for reason, count in entry["questions"]["dropped"].items():
            dropped[reason] += count
    assert dropped["unsolvable"] > 0 and dropped["non_ascii"] > 0  # the filters really filter


def test_every_released_response_is_the_argmax_of_its_scores(hf_run):
    scored = {}
    for path in (hf_run / "results" / "tiny" / "reward").glob("*/*.parquet"):
        for row in read_shard(path, SCORED).to_pylist():
            scored[row["id"]] = row
    released = pq.read_table(hf_run / RELEASE / "data").to_pylist()
    assert released
    for pair in released:
        row = scored[pair["id"]]
        best = max(range(len(row["scores"])), key=lambda i: (row["scores"][i], -i))
        assert pair["response"] == row["responses"][best]
        assert pair["score"] == max(row["scores"])
        others = sorted(row["scores"], reverse=True)
        assert pair["margin"] == (pytest.approx(others[0] - others[1]) if len(others) > 1 else None)


def test_second_run_gives_a_byte_identical_release(hf_run):
    run_snakemake(hf_run, *LOCAL, "--config", "results=results/again")
    assert release_bytes(hf_run / "results/again/release") == release_bytes(hf_run / RELEASE)


def test_deleting_one_shard_reruns_only_that_shard_and_its_dependents(hf_run):
    before = release_bytes(hf_run / RELEASE)
    (hf_run / "results/tiny/filter/qwen2-math/00001.parquet").unlink()
    plan = run_snakemake(hf_run, *LOCAL, "-n")
    assert job_counts(plan.stdout) == {"filter": 1, "respond": 1, "reward": 1, "best": 1, "release": 1, "all": 1,
                                       "total": 6}
    wildcards = {line.strip() for line in plan.stdout.splitlines() if line.strip().startswith("wildcards:")}
    assert wildcards == {"wildcards: gen=qwen2-math, shard=00001"}
    run_snakemake(hf_run, *LOCAL)
    assert release_bytes(hf_run / RELEASE) == before


@pytest.mark.vllm
def test_demo_through_vllm_engine(tmp_path, tiny_models):
    workdir = tiny_workflow(tmp_path / "vllm-run", tiny_models)
    run_snakemake(workdir, *LOCAL, "--configfile", "presets/tiny.yaml", "presets/tiny-vllm.yaml")
    funnel = json.loads((workdir / "results/tiny-vllm/release/funnel.json").read_text())
    assert funnel["released_pairs"] > 0
    assert "results/tiny/models/tiny-lm" in funnel["models"]["generator"]
    loaded = sidecars(workdir / "results/tiny-vllm")
    for upstream, downstream in zip(SHARD_STAGES, SHARD_STAGES[1:]):
        for key in loaded[downstream]:
            assert loaded[downstream][key]["questions"].total == loaded[upstream][key]["questions"].kept


def test_full_scale_dry_run_plans_without_models(tmp_path):
    workdir = copy_workflow(tmp_path / "full")
    plan = run_snakemake(workdir, "-n", timeout=120)
    assert job_counts(plan.stdout) == {"generate": 400, "filter": 400, "respond": 400, "reward": 400, "best": 400,
                                       "release": 1, "all": 1, "total": 2002}


@pytest.mark.parametrize("override, message", [
    ("generate: {shard_size: 0}", "'generate.shard_size': 0 is less than the minimum of 1"),
    ("respond: {model: qwen3-math}", "'respond.model': unknown model key 'qwen3-math'"),
    ("filter: {langauge: ascii}", "'langauge' was unexpected"),
])
def test_bad_config_stops_before_any_job(tmp_path, override, message):
    workdir = copy_workflow(tmp_path / "bad")
    (workdir / "override.yaml").write_text(override + "\n")
    result = run_snakemake(workdir, "-n", "--configfile", "override.yaml", check=False, timeout=120)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def test_questions_file_generator_plans_import_jobs(tmp_path):
    from conftest import SHARED_DATA

    workdir = copy_workflow(tmp_path / "import")
    (workdir / "override.yaml").write_text(
        f"generators:\n  gsm8k-test: {{questions_file: {SHARED_DATA / 'gsm8k_test.jsonl'}, questions: 1319}}\n")
    plan = run_snakemake(workdir, "-n", "--configfile", "override.yaml", timeout=120)
    counts = job_counts(plan.stdout)
    assert counts["import_questions"] == 1 and counts["generate"] == 400 and counts["filter"] == 401
    (workdir / "missing.yaml").write_text("generators:\n  mine: {questions_file: no/such.jsonl, questions: 5}\n")
    missing = run_snakemake(workdir, "-n", "--configfile", "missing.yaml", check=False, timeout=120)
    assert missing.returncode != 0 and "no/such.jsonl" in missing.stdout + missing.stderr
