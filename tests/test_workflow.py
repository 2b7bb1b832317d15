"""The workflow end to end through the real snakemake CLI, on the tiny preset."""
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset

from conftest import (
    NO_EVALUATION,
    SHARED_DATA,
    SHARED_DATA_ENV,
    copy_run,
    copy_workflow,
    full_config,
    job_counts,
    release_bytes,
    run_snakemake,
    shards_per_stage,
    sidecars,
    tiny_config,
    user_env,
)
from scalequest.chunks import chunks_dir
from scalequest.decontaminate_cli import SCORES
from scalequest.evaluation.pairs import write_pairs
from scalequest.failure_injection import KILL_AFTER_CHUNKS_ENV
from scalequest.funnel import SHARD_STAGES
from scalequest.jsonl import read_rows
from scalequest.records import REWARDED, read_shard
from scalequest.stats import read_stats
from scalequest.tiny.benchmark import HELDOUT_QUESTIONS

LOCAL = ("--profile", "profiles/local")
RELEASE = "results/tiny/release"
RELEASE_CARD = "results/tiny/card/release.md"  # the release job's card; rule card adds the evaluation (README.md)
EVALUATION = "results/tiny/evaluation"
BENCHMARK_FILES = {"gsm8k": "gsm8k_test", "math": "math_test", "math500": "math500_test",
                   "college_math": "college_math_test", "olympiadbench": "olympiadbench_test"}


@pytest.fixture(scope="module")
def hf_run(demo_run):
    """The demo (hf engine) as a user runs it."""
    return demo_run


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
    config = tiny_config()
    assert all(len(loaded[stage]) == shards_per_stage(config) for stage in SHARD_STAGES)
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
    assert generated == sum(generator["questions"] for generator in config["generators"].values())
    funnel = json.loads((hf_run / RELEASE / "funnel.json").read_text())
    best_kept = sum(p["questions"].kept for p in loaded["best"].values())
    release_stage = funnel["stages"][-1]["questions"]
    assert release_stage["in"] == best_kept
    assert funnel["released_pairs"] == release_stage["kept"] == best_kept - sum(release_stage["dropped"].values())
    assert set(release_stage["dropped"]) == {"duplicate", "near_duplicate", "contaminated:tiny"}  # 0s listed too
    dropped = defaultdict(int)
    for entry in funnel["stages"]:
        for reason, count in entry["questions"]["dropped"].items():
            dropped[reason] += count
    assert dropped["unsolvable"] > 0 and dropped["non_ascii"] > 0  # the filters really filter
    kept_count = config["difficulty"]["keep"]["count"]  # the preset's keep rule: the hardest `count`
    assert dropped["too_easy"] == sum(p["questions"].total for p in loaded["sample"].values()) - kept_count


def test_difficulty_histograms_before_and_after_sampling(hf_run):
    results = hf_run / "results" / "tiny"
    funnel = json.loads((results / "release/funnel.json").read_text())
    difficulty = funnel["difficulty"]
    loaded = sidecars(results)
    assert sum(difficulty["scored"]) == sum(p["questions"].kept for p in loaded["difficulty"].values())
    assert (sum(difficulty["sampled"]) == sum(p["questions"].kept for p in loaded["sample"].values())
            == tiny_config()["difficulty"]["keep"]["count"])
    assert sum(difficulty["released"]) == funnel["released_pairs"]
    assert difficulty["scorer"]["held_out_questions"] > 0 and difficulty["scorer"]["held_out_mse"] is not None
    labels = read_stats(results / "train/difficulty/labels/00000.stats.json")
    assert labels["questions"].dropped["no_gold"] > 0  # the tiny corpus's unsolvable problems have no answer
    card = (results / "release/README.md").read_text()
    assert "## Difficulty" in card and "| predicted fail rate | scored | sampled | released |" in card
    for label, scored, sampled, released in zip(["< 0.2"], difficulty["scored"], difficulty["sampled"],
                                                difficulty["released"]):
        assert f"| {label} | {scored} | {sampled} | {released} |" in card
    released = pq.read_table(results / "release/data").column("difficulty").to_pylist()
    assert all(value is not None for value in released)


def test_release_reports_duplicates_and_contamination_per_benchmark(hf_run):
    """The demo (no ../shared) checks its own held-out benchmark, and says which real ones it left out."""
    release = hf_run / RELEASE
    funnel = json.loads((release / "funnel.json").read_text())
    dropped = funnel["stages"][-1]["questions"]["dropped"]
    benchmarks = funnel["decontamination"]["benchmarks"]
    assert {name: about["items"] for name, about in benchmarks.items()} == {"tiny": HELDOUT_QUESTIONS}
    assert benchmarks["tiny"]["dropped"] == dropped["contaminated:tiny"] > 0
    assert set(funnel["decontamination"]["absent"]) == set(BENCHMARK_FILES)
    contaminated = [json.loads(line) for line in (release / "contamination.jsonl").read_text().splitlines()]
    assert len(contaminated) == sum(about["dropped"] for about in benchmarks.values())
    duplicates = pq.read_table(hf_run / "results/tiny/dedup/duplicates.parquet").to_pylist()
    assert len(duplicates) == dropped["duplicate"] + dropped["near_duplicate"]
    reason_of = {row["id"]: row["reason"] for row in duplicates}
    for row in duplicates:  # the kept row survives its pass (an exact survivor may still be a near-duplicate)
        allowed = {None} if row["reason"] == "near_duplicate" else {None, "near_duplicate"}
        assert reason_of.get(row["kept_id"]) in allowed
    card = (release / "README.md").read_text()
    assert "## Decontamination" in card
    for name, about in benchmarks.items():
        assert f"| {name} | {about['source']} | {about['items']} | {about['matched']} | {about['dropped']} |" in card
    absent = card.split("Not checked (optional, their file was not there): ", 1)[1].split("\n", 1)[0]
    assert "gsm8k (`$SCALEQUEST_SHARED_DATA/gsm8k_test.jsonl`)" in absent and absent.endswith(".")


def test_decontaminate_command_finds_what_the_workflow_drops(hf_run, tmp_path):
    """`scalequest-decontaminate` on the run's best questions, with the run's config: its matches are
    the screen jobs' matches, and the questions it says to drop are those the release dropped as
    contaminated plus those it had already dropped as duplicates."""
    results = hf_run / "results/tiny"
    best = pq.read_table(sorted((results / "best").glob("*/*.parquet"))).to_pylist()
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"text": row["question"]}) + "\n" for row in best), encoding="utf-8")
    line_of = {row["id"]: line for line, row in enumerate(best, start=1)}
    out = tmp_path / "matches.jsonl"
    result = subprocess.run(["scalequest-decontaminate", str(questions), "--config", "config.yaml", "presets/tiny.yaml",
                             "--field", "text", "--out", str(out)], cwd=hf_run, env=user_env(), text=True,
                            capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{questions}: {len(best)} questions;" in result.stdout
    found = [json.loads(line) for line in out.read_text().splitlines()]
    workflow = pq.read_table(sorted((results / "matches").glob("*/*.parquet"))).to_pylist()
    assert len(workflow) > 0
    def key(line, row, scores):
        return json.dumps([line, row["benchmark"], row["item"], row["method"], scores], sort_keys=True)

    assert sorted(key(record["line"], record, record["scores"]) for record in found) == sorted(
        key(line_of[row["id"]], row, {name: row[name] for name in SCORES if row[name] is not None}) for row in workflow)
    contamination = (results / "release/contamination.jsonl").read_text().splitlines()
    contaminated = {json.loads(line)["id"] for line in contamination}
    duplicates = {row["id"] for row in pq.read_table(results / "dedup/duplicates.parquet").to_pylist()}
    dropped = {record["line"] for record in found if record["dropped"]}
    assert dropped - {line_of[row_id] for row_id in duplicates} == {line_of[row_id] for row_id in contaminated}


def test_real_benchmarks_are_used_where_their_files_are(hf_run, tmp_path):
    """With SCALEQUEST_SHARED_DATA pointing at the five test sets, the demo screens against them too:
    only the benchmark index, the screens and what follows them run again (here without the evaluation)."""
    workdir = copy_run(hf_run, tmp_path / "wf")
    env = user_env(**{SHARED_DATA_ENV: str(SHARED_DATA)})
    plan = job_counts(run_snakemake(workdir, *LOCAL, "-n", env=env).stdout)
    assert {"benchmark_index", "screen", "release"} <= set(plan) and not {"generate", "respond", "qft"} & set(plan)
    run_snakemake(workdir, *LOCAL, *NO_EVALUATION, env=env)
    funnel = json.loads((workdir / RELEASE / "funnel.json").read_text())
    benchmarks = funnel["decontamination"]["benchmarks"]
    assert {name: about["items"] for name, about in benchmarks.items()} == {
        "gsm8k": 1319, "math": 5000, "math500": 500, "college_math": 2818, "olympiadbench": 675,
        "tiny": HELDOUT_QUESTIONS}
    assert funnel["decontamination"]["absent"] == {}
    dropped = funnel["stages"][-1]["questions"]["dropped"]
    assert all(about["dropped"] == dropped[f"contaminated:{name}"] for name, about in benchmarks.items())


def test_calibration_measures_the_plan_from_the_run(hf_run, tmp_path):
    workdir = copy_run(hf_run, tmp_path / "wf")
    run_snakemake(workdir, *LOCAL, "calibrate")
    calibrated = yaml.safe_load((workdir / "results/tiny/calibration.yaml").read_text())["plan"]
    loaded = sidecars(workdir / "results" / "tiny")
    filtered = [p["questions"] for p in loaded["filter"].values()]
    assert calibrated["keep_rates"]["filter"] == round(sum(f.kept for f in filtered)
                                                       / sum(f.total for f in filtered), 4)
    generated = sum(p["questions"].total for p in loaded["generate"].values())
    seconds = sum(p["seconds"] for p in loaded["generate"].values())
    assert calibrated["samples_per_job_hour"]["generate"] == pytest.approx(generated * 3600 / seconds, rel=1e-3)
    assert set(calibrated["samples_per_job_hour"]) == {"generate", "filter", "difficulty_labels", "difficulty",
                                                        "respond", "reward"}
    run_snakemake(workdir, "plan", "--cores", "1", "--forcerun", "plan", "--configfile",
                  "results/tiny/calibration.yaml", "--config", "results=results/calibrated")
    plan = json.loads((workdir / "results/calibrated/plan.json").read_text())
    generate = next(stage for stage in plan["stages"] if stage["stage"] == "generate")
    assert generate["gpu_hours"] == round(2_000_000 / calibrated["samples_per_job_hour"]["generate"], 1)


def test_job_logs_say_where_the_job_ran(hf_run):
    for log in sorted((hf_run / "results/tiny/logs/generate").glob("*/*.log")):
        assert re.fullmatch(r"== rule generate on \S+, hub offline, CUDA_VISIBLE_DEVICES=",
                            log.read_text().splitlines()[0])


def test_report_renders_with_the_figures_embedded(hf_run, tmp_path):
    workdir = copy_run(hf_run, tmp_path / "wf")
    run_snakemake(workdir, *LOCAL, "--report", "report.html")
    page = (workdir / "report.html").read_text()
    for figure in ("funnel", "lengths", "rewards", "difficulty", "contamination"):
        assert f"data:image/png;charset=utf8;filename={figure}.png;base64,iVBOR" in page  # a PNG, inline
    assert "filename=samples.html;base64," in page and "filename=config.yaml;base64," in page
    assert "filename=evaluation.html;base64," in page
    funnel = json.loads((hf_run / RELEASE / "funnel.json").read_text())
    card = (hf_run / RELEASE / "README.md").read_text()
    for measure, summary in funnel["distributions"].items():  # the card's numbers are funnel.json's
        assert f"| {measure} | {summary['count']} | {summary['mean']:g} |" in card


def test_every_released_response_is_the_argmax_of_its_scores(hf_run):
    scored = {}
    for path in (hf_run / "results" / "tiny" / "reward").glob("*/*.parquet"):
        for row in read_shard(path, REWARDED).to_pylist():
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


# What differs between two trainings that are the same: the time they took (sidecars, job records), the
# temporary folder a job wrote its model in (its record, and TrainingArguments pickled by the Trainer), and
# the digests its checkpoints would be recorded with (its base model's file times: a retrained base model).
MADE_HOW = ("seconds", "interruptions", "output_dir", "checkpoint_settings")


def same_training_file(first: Path, second: Path) -> bool:
    """Whether two files of two trainings are the same but for how they were made (MADE_HOW)."""
    if first.name == "training_args.bin":  # its settings are training_job.json's; its output_dir the temporary one
        return second.is_file()
    if first.suffix == ".json":
        def made(path):
            return {key: value for key, value in json.loads(path.read_text()).items() if key not in MADE_HOW}
        return made(first) == made(second)
    return first.read_bytes() == second.read_bytes()


def test_a_second_training_makes_the_same_models(hf_run, tmp_path):
    """The training deleted and run again: seed questions, QFT, the QPO samples, pairs and models, the
    difficulty labels and scorer are the same, file for file and byte for byte (MADE_HOW aside). The second
    run of the synthesis, the release and the evaluation from these models: tests/test_slurm.py.

    Slow: every training of the demo once more (about 1.5 minutes on 2 cores)."""
    workdir = copy_run(hf_run, tmp_path / "wf")
    first, second = hf_run / "results/tiny/train", workdir / "results/tiny/train"
    shutil.rmtree(second)
    models = [f"results/tiny/train/qpo/{gen}/model" for gen in tiny_config()["generators"]]
    run = run_snakemake(workdir, *LOCAL, *models, "results/tiny/train/difficulty/scorer")
    assert set(job_counts(run.stdout + run.stderr)) == {"seed_questions", "qft", "qpo_sample", "qpo_rewrite",
                                                         "qpo_train", "difficulty_labels", "difficulty_train", "total"}
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file()) == files
    assert any(name.name == "model.safetensors" for name in files)
    for name in files:
        assert same_training_file(first / name, second / name), name


def test_evaluation_scores_every_model_on_every_item(hf_run):
    """The tiny LM before (none) and after SFT on the tiny release, on the demo's held-out benchmark: a
    row per (model, dataset, benchmark), its accuracy recounted from the per-item records, over every item."""
    evaluation = hf_run / EVALUATION
    scores = json.loads((evaluation / "scores.json").read_text())
    assert scores["benchmarks"] == {"tiny": {"items": HELDOUT_QUESTIONS}}
    rows = [(row["label"], row["dataset"]) for row in scores["rows"]]
    assert rows == [("tiny-lm", "scalequest"), ("tiny-lm", "none")]
    for row in scores["rows"]:
        shards = sorted((evaluation / "answers" / row["label"] / row["dataset"] / "tiny").glob("*.parquet"))
        records = [record for shard in shards for record in pq.read_table(shard).to_pylist()]
        assert sorted(record["item"] for record in records) == list(range(HELDOUT_QUESTIONS))
        correct = sum(verdict == "correct" for record in records for verdict in record["verdicts"])
        cell = row["scores"]["tiny"]
        assert (cell["items"], cell["accuracy"]) == (HELDOUT_QUESTIONS, round(correct / HELDOUT_QUESTIONS, 6))
        assert cell["ci95"][0] <= cell["accuracy"] <= cell["ci95"][1] and row["paper"] is None
        counters = [read_stats(shard.with_name(shard.stem + ".stats.json"))["counters"] for shard in shards]
        assert sum(c.get("correct", 0) for c in counters) == correct
        assert sum(sum(c[v] for v in c if v != "generated_tokens") for c in counters) == HELDOUT_QUESTIONS
    released = json.loads((hf_run / RELEASE / "funnel.json").read_text())["released_pairs"]
    metrics = json.loads((evaluation / "sft/tiny-lm/scalequest/model/training_metrics.json").read_text())
    assert metrics["kind"] == "sft" and metrics["train_pairs"] + metrics["held_out_pairs"] == released
    card = (hf_run / RELEASE / "README.md").read_text()
    assert "## Evaluation" in card and "| tiny-lm | scalequest |" in card and "| tiny-lm | none |" in card


def test_a_stage_of_the_run_is_an_sft_dataset_too(hf_run, tmp_path):
    """The Figure 5 ablation's datasets: the best pairs before dedup and decontamination, and each
    question's first response (no reward filtering); adding one plans its SFT and answers only."""
    results = hf_run / "results/tiny"
    for stage in ("respond", "best"):
        shards = sorted((results / stage).glob("*/*.parquet"))
        funnel = write_pairs(stage, {"stage": stage}, [str(shard) for shard in shards], tmp_path / f"{stage}.jsonl",
                             tmp_path / f"{stage}.stats.json")
        records = [record for shard in shards for record in pq.read_table(shard).to_pylist()]
        pairs = read_rows(tmp_path / f"{stage}.jsonl")
        assert funnel.kept == len(pairs) == len(records) > 0
        first = records[0]["responses"][0] if stage == "respond" else records[0]["response"]
        assert pairs[0] == {"question": records[0]["question"], "response": first}
    workdir = copy_run(hf_run, tmp_path / "ablation")
    plan = run_snakemake(workdir, *LOCAL, "-n", "--config",
                         "evaluation={datasets: {first_responses: {stage: respond}}}")
    assert job_counts(plan.stdout) == {"all": 1, "card": 1, "eval_answers": 2, "evaluate": 1, "report_evaluation": 1,
                                       "report_files": 1, "sft": 1, "sft_data": 1, "total": 9}
    assert "dataset=none" not in plan.stdout and "dataset=scalequest" not in plan.stdout


def test_a_new_sft_learning_rate_reruns_that_models_sft_and_answers_only(hf_run, tmp_path):
    """The reference model's answers (dataset none) and the whole synthesis stay; SFT, its answers and
    what shows the scores run again."""
    workdir = copy_run(hf_run, tmp_path / "lr")
    (workdir / "my.yaml").write_text("evaluation: {sft: {models: {tiny-lm: {learning_rate: 0.0001}}}}\n")
    plan = run_snakemake(workdir, *LOCAL, "-n", "--configfile", "my.yaml")
    # report_files too: the report's config page shows the new setting
    assert job_counts(plan.stdout) == {"all": 1, "card": 1, "eval_answers": 2, "evaluate": 1, "report_evaluation": 1,
                                       "report_files": 1, "sft": 1, "total": 8}
    assert "dataset=none" not in plan.stdout and "wildcards: model=tiny-lm, dataset=scalequest" in plan.stdout


def test_deleting_one_shard_reruns_only_that_shard_and_its_killed_jobs_resume(hf_run, tmp_path):
    """One generate shard deleted: only its chain runs again. Its generate, respond and reward jobs are each
    SIGKILLed after their second chunk (one run each, as a node failure would); every next run resumes
    from the chunks on disk, and the release is the same, byte for byte. (The runs leave out the evaluation:
    the second run in tests/test_slurm.py re-makes it from a re-made release.)

    Slow: four snakemake runs of one shard's chain, three of them killed mid-job (about 1.5 minutes)."""
    before, sidecars_before = release_bytes(hf_run / RELEASE), sidecars(hf_run / "results/tiny")
    card_before = (hf_run / RELEASE_CARD).read_bytes()
    workdir = copy_run(hf_run, tmp_path / "wf")
    results = workdir / "results/tiny"
    (results / "generate/qwen2-math/00001.parquet").unlink()
    plan = run_snakemake(workdir, *LOCAL, "-n")
    # The keep rates are gathered again (from identical scores), without re-drawing the other shards. The release
    # is made again, so is what trains on it (Snakemake goes by file times): the SFT and its answers, not the
    # reference model's.
    bands = tiny_config()["release"]["near_dup"]["bands"]
    evaluation = {"sft_data": 1, "sft": 1, "eval_answers": 2, "evaluate": 1, "card": 1, "report_evaluation": 1}
    assert job_counts(plan.stdout) == {"generate": 1, "filter": 1, "difficulty": 1, "difficulty_gather": 1,
                                       "respond": 1, "reward": 1, "screen": 1, "minhash_list": 1, "lsh_band": bands,
                                       "dedup": 1, "release": 1, "report_files": 1, "all": 1, **evaluation,
                                       "total": 12 + bands + 7}
    wildcards = {line.strip() for line in plan.stdout.splitlines() if line.strip().startswith("wildcards: gen")}
    assert wildcards == {"wildcards: gen=qwen2-math, shard=00001"}  # and every LSH band (all shards' buckets)
    assert "dataset=none" not in plan.stdout  # the reference model's answers stay
    env = user_env(**{KILL_AFTER_CHUNKS_ENV: "generate:2,respond:2,reward:2"})
    for stage in ("generate", "respond", "reward"):
        killed = run_snakemake(workdir, *LOCAL, *NO_EVALUATION, env=env, check=False)
        assert killed.returncode != 0, killed.stdout[-3000:]
        chunks = chunks_dir(results / stage / "qwen2-math/00001.parquet")
        assert len(list(chunks.glob(f"{stage}-*.json"))) == 2, killed.stdout[-3000:] + killed.stderr[-3000:]
        assert not (results / stage / "qwen2-math/00001.stats.json").exists()
        if stage == "respond":
            check_status_of_the_killed_run(workdir, results)
    run_snakemake(workdir, *LOCAL, *NO_EVALUATION, env=env)
    for stage in ("generate", "respond", "reward"):
        log = (results / "logs" / stage / "qwen2-math/00001.log").read_text()
        assert re.search(rf"resuming {stage} qwen2-math/00001: 2 of \d+ chunks done", log), log[-3000:]
        assert not chunks_dir(results / stage / "qwen2-math/00001.parquet").exists()
    assert release_bytes(results / "release") == before
    assert (workdir / RELEASE_CARD).read_bytes() == card_before  # the release job's card (README.md's body)
    after = sidecars(results)
    made_how = ("seconds", "interruptions")
    for stage, shards in sidecars_before.items():
        for key, payload in shards.items():
            made = {name: value for name, value in after[stage][key].items() if name not in made_how}
            assert made == {name: value for name, value in payload.items() if name not in made_how}
            resumed = stage in ("generate", "respond", "reward") and key == ("qwen2-math", "00001")
            if "interruptions" in payload:
                assert after[stage][key]["interruptions"]["attempts"] == (2 if resumed else 1), (stage, key)


def check_status_of_the_killed_run(workdir, results):
    """`make status`'s command on a run whose respond job was killed: shards and chunks as the files say."""
    shown = subprocess.run([sys.executable, "-m", "scalequest.status", "--configfile", "config.yaml",
                            "presets/tiny.yaml", "--json"], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    stages = {row["stage"]: row for row in status["stages"]}
    for stage in ("generate", "filter", "respond", "reward"):
        assert stages[stage]["done"] == len(list((results / stage).glob("*/*.stats.json"))), stage
    assert stages["respond"]["done"] == stages["respond"]["jobs"] - 1
    failed = [row for row in status["shards"] if row["state"] == "failed"]
    assert [(row["stage"], row["generator"], row["shard"]) for row in failed] == [("respond", "qwen2-math", "00001")]
    chunks = chunks_dir(results / "respond/qwen2-math/00001.parquet")
    assert failed[0]["chunks"] == len(list(chunks.glob("respond-*.json"))) == 2
    assert (workdir / failed[0]["log"]).resolve() == (results / "logs/respond/qwen2-math/00001.log").resolve()


def test_full_scale_dry_run_plans_without_models(tmp_path):
    workdir = copy_workflow(tmp_path / "full")
    plan = run_snakemake(workdir, "-n", timeout=120)
    counts = job_counts(plan.stdout)
    config = full_config()
    shards, generators = shards_per_stage(config), len(config["generators"])
    # sample runs in the respond job, best in the reward job, minhash and matches in the screen job
    shard_stages = {rule: shards for rule in ("generate", "filter", "difficulty", "respond", "reward", "screen")}
    release_stages = {"benchmark_index": 1, "minhash_list": 1, "lsh_band": config["release"]["near_dup"]["bands"],
                      "dedup": 1, "release": 1, "all": 1}
    label_jobs = -(-config["seeds"]["max_questions"] // config["difficulty"]["labels"]["shard_size"])
    training = {"check_optimizer": 1, "seed_questions": 1, "qft": generators, "qpo_sample": generators,
                "qpo_rewrite": generators, "qpo_train": generators, "difficulty_labels": label_jobs,
                "difficulty_train": 1, "difficulty_gather": 1}
    assert {rule: counts[rule] for rule in training} == training
    assert {rule: counts[rule] for rule in {**shard_stages, **release_stages}} == {**shard_stages, **release_stages}
    assert counts["total"] == sum(count for rule, count in counts.items() if rule != "total")


def test_full_scale_evaluate_dry_run_plans_sft_on_whole_nodes(tmp_path):
    """`snakemake evaluate -n --profile slurm` at full scale, with no GPU, network or Slurm: an SFT job per
    base model x dataset on whole nodes (srun across them), an answers job per evaluated model x benchmark
    shard."""
    workdir = copy_workflow(tmp_path / "full")
    # A partition capped at 24 hours: the SFT (planned at 48) asks for 24, and resumes from its checkpoints.
    plan = run_snakemake(workdir, "evaluate", "-n", "--profile", "slurm", timeout=300,
                         env=user_env(SCALEQUEST_SLURM_MAX_MINUTES="1440"))
    counts = job_counts(plan.stdout)
    evaluation = full_config()["evaluation"]
    models = len(evaluation["base_models"]) * len(evaluation["datasets"]) + 1  # and the solver as it is
    shards = sum(evaluation["shards"].get(name, 1) for name in evaluation["benchmarks"])
    assert {rule: counts[rule] for rule in ("sft_data", "sft", "eval_items", "eval_answers", "evaluate")} == {
        "sft_data": 1, "sft": 4, "eval_items": 5, "eval_answers": models * shards, "evaluate": 1}
    sft_resources = re.findall(r"rule sft:\n(?:    .*\n)*?    resources: (.*)", plan.stdout)
    assert len(sft_resources) == 4
    assert all("nodes=2" in line and "gres=gpu:8" in line and "mpi=srun" in line for line in sft_resources)
    assert all("runtime=1440" in line and "slurm_extra=--signal=USR1@600" in line for line in sft_resources)
    answers_resources = re.findall(r"rule eval_answers:\n(?:    .*\n)*?    resources: (.*)", plan.stdout)
    assert len(answers_resources) == models * shards and all("gpu=1" in line for line in answers_resources)


def test_a_missing_benchmark_file_stops_before_any_job(tmp_path):
    """Its path is the benchmark index's input: Snakemake names it. (The other config errors:
    tests/test_bad_inputs.py.) A benchmark the preset marks optional is optional for the preset's path only."""
    workdir = copy_workflow(tmp_path / "bad")
    (workdir / "override.yaml").write_text("release: {decontamination: {benchmarks: {gsm8k: {path: no/such.jsonl}}}}\n")
    # The preset marks gsm8k optional, for its own path: a path set over it is required.
    result = run_snakemake(workdir, *LOCAL, "-n", "--configfile", "override.yaml", check=False, timeout=120)
    assert result.returncode != 0
    assert "no/such.jsonl" in result.stdout + result.stderr
    assert not (workdir / "results").exists()


def test_questions_file_generator_plans_import_jobs(tmp_path):
    workdir = copy_workflow(tmp_path / "import")
    (workdir / "override.yaml").write_text(
        f"generators:\n  gsm8k-test: {{questions_file: {SHARED_DATA / 'gsm8k_test.jsonl'}, questions: 1319}}\n")
    plan = run_snakemake(workdir, "-n", "--configfile", "override.yaml", timeout=120)
    counts = job_counts(plan.stdout)
    shards = shards_per_stage(full_config())  # and one more: the file's 1,319 questions in one shard
    assert counts["import_questions"] == 1 and counts["generate"] == shards and counts["filter"] == shards + 1
    (workdir / "missing.yaml").write_text("generators:\n  mine: {questions_file: no/such.jsonl, questions: 5}\n")
    missing = run_snakemake(workdir, "-n", "--configfile", "missing.yaml", check=False, timeout=120)
    assert missing.returncode != 0 and "no/such.jsonl" in missing.stdout + missing.stderr


def test_a_deleted_sidecar_or_release_file_is_made_again(hf_run, tmp_path):
    workdir = copy_run(hf_run, tmp_path / "wf")
    # A release data file deleted by hand: funnel.json no longer tells the truth, so the release is made again.
    (workdir / "results/tiny/release/data/train-00001-of-00002.parquet").unlink()
    plan = run_snakemake(workdir, *LOCAL, "-n")
    assert "The release in results/tiny/release differs from its funnel.json (missing: " \
           "data/train-00001-of-00002.parquet): it will be made again" in plan.stderr, plan.stderr[-3000:]
    counts = job_counts(plan.stdout)
    assert counts["release"] == 1 and "filter" not in counts and "respond" not in counts
    (workdir / "results/tiny/filter/qwen2-math/00000.stats.json").unlink()
    plan = run_snakemake(workdir, *LOCAL, "-n")
    counts = job_counts(plan.stdout)
    assert counts["filter"] == counts["respond"] == 1 and "generate" not in counts
    assert {line.strip() for line in plan.stdout.splitlines() if line.strip().startswith("wildcards: gen")} == {
        "wildcards: gen=qwen2-math, shard=00000"}


def planned_resources(dry_run_output: str, rule: str) -> list[dict[str, str]]:
    """The `resources:` of every planned job of `rule` in a dry run's output, with its wildcards."""
    jobs = []
    for block in re.split(r"\n(?=rule |localrule )", dry_run_output):
        if re.match(rf"(?:local)?rule {rule}:", block):
            wildcards = re.search(r"wildcards: (.+)", block)
            found = dict(item.split("=", 1) for item in re.search(r"resources: (.+)", block).group(1).split(", "))
            jobs.append({**found, "wildcards": wildcards.group(1) if wildcards else ""})
    return jobs


def test_a_model_on_four_gpus_makes_four_gpu_slurm_jobs(tmp_path):
    """`snakemake --profile slurm -n` with the solver on 4 GPUs (tensor parallel): its jobs ask Slurm
    for 4 GPUs, with CPUs and memory per GPU; the reward model's jobs keep 1."""
    workdir = copy_workflow(tmp_path / "tp4")
    (workdir / "tp4.yaml").write_text("models:\n  qwen2-math-7b-instruct: {vllm_args: {tensor_parallel_size: 4}}\n")
    output = run_snakemake(workdir, "--profile", "slurm", "-n", "--configfile", "tp4.yaml", timeout=300).stdout
    for rule in ("filter", "respond", "difficulty_labels"):
        jobs = planned_resources(output, rule)
        assert jobs and all(job["gpu"] == "4" and job["cpus_per_gpu"] == "8" and job["mem_mb_per_cpu"] == "8000"
                            and job["slurm_partition"] == "gpu" for job in jobs), rule
    assert {job["gpu"] for job in planned_resources(output, "reward")} == {"1"}
    generate = {job["wildcards"].split(",")[0]: job["gpu"] for job in planned_resources(output, "generate")}
    assert generate == {"gen=qwen2-math": "4", "gen=deepseek-math": "1"}  # each generator's own base model


@pytest.mark.parametrize("override", [("--configfile", "my.yaml"), ("--config", "results=results/mine")])
def test_a_setting_of_yours_changes_the_demo_and_keeps_its_preset(tmp_path, override):
    """`snakemake --profile profiles/local --configfile my.yaml` (or --config) is the tiny demo with
    that setting, not the full-scale run."""
    workdir = copy_workflow(tmp_path / "mine")
    (workdir / "my.yaml").write_text("respond: {n: 2}\n")
    demo = job_counts(run_snakemake(workdir, *LOCAL, "-n", timeout=120).stdout)
    mine = run_snakemake(workdir, *LOCAL, "-n", *override, timeout=120).stdout
    assert job_counts(mine) == demo and demo["generate"] == shards_per_stage(tiny_config()) and "prefetch" not in demo
