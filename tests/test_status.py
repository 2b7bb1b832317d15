"""`python -m scalequest.status` on a results tree made by hand for the tiny config: finished shards
(sidecars), a job SIGKILLed long ago (its chunks and attempts left), one running (a fresh heartbeat), failed
ones (a bad outcome, a traceback in the log), a retry just started; every figure checked against the files."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, full_config, tiny_config
from scalequest.chunks import ATTEMPTS_FILE, chunks_dir
from scalequest.config import load_config_files
from scalequest.gpu_jobs import job_gpus
from scalequest.joblog import where_it_runs
from scalequest.plan import build_plan
from scalequest.stats import ShardStats, stats_path, write_stats
from scalequest.status import CHUNK_FILE, EXIT_NO_RUN, STATES, render_status, run_status
from scalequest.status import main as status_main_code
from scalequest.training.checkpoints import ATTEMPTS as TRAINING_ATTEMPTS
from scalequest.training.checkpoints import MARKER
from scalequest.training.checkpoints import PREFIX as CHECKPOINT_PREFIX
from scalequest.training.checkpoints import checkpoints_dir as checkpoints_dir_of
from scalequest.training.job import METRICS_FILE

CHUNK_SIZE = 16  # and the tiny model's hf batch: a chunk is a multiple of it
LONG_AGO = time.time() - 86400
TRACEBACK = 'Traceback (most recent call last):\n  File "scripts/x.py", line 3, in <module>\n{error}\n'


def shard_out(results: Path, stage: str, gen: str, shard: str) -> Path:
    return results / stage / gen / f"{shard}.parquet"


def write_sidecar(out: Path, stage: str, gen: str, shard: str, seconds: float, lost: float | None = None) -> None:
    stats = ShardStats(stage, gen, shard, 0, {})
    stats.questions.keep(64)
    stats.seconds = seconds
    if lost is not None:
        stats.interruptions = {"attempts": 2, "resumed_chunks": 1, "lost_seconds": lost}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_stats(stats_path(out), stats)


def write_chunks(out: Path, starts: list[int], attempts: list[dict]) -> None:
    folder = chunks_dir(out)
    folder.mkdir(parents=True)
    for start in starts:
        payload = {"settings": {}, "start": start, "stop": start + CHUNK_SIZE, "seconds": 5.0, "count": CHUNK_SIZE,
                   "attempt": 1, "results": [["q", 3, True]] * CHUNK_SIZE}
        (folder / f"generate-{start:09d}-{start + CHUNK_SIZE:09d}.json").write_text(json.dumps(payload))
    (folder / ".generate-000000048-000000064.json.x1.tmp").write_text("{")  # a chunk being written: not done
    (folder / ATTEMPTS_FILE).write_text(json.dumps(attempts))


def attempt(number: int, started: float, last_seen: float, outcome: str) -> dict:
    return {"attempt": number, "started": started, "last_seen": last_seen, "host": "node7", "slurm_job": "4242",
            "chunks_written": 1, "calls": {"generate": 64 // CHUNK_SIZE}, "outcome": outcome}


def write_log(results: Path, rule: str, name: str, *errors: str) -> Path:
    """A job's log: one header per attempt, each followed by its traceback where given ('' for none)."""
    log = results / "logs" / rule / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"{where_it_runs(rule)}\nprogress 10/64\n" + (TRACEBACK.format(error=error) if error else "")
                           for error in errors or ("",)))
    return log


def build_tree(results: Path) -> None:
    generate = lambda gen, shard: shard_out(results, "generate", gen, shard)  # noqa: E731
    write_sidecar(generate("qwen2-math", "00000"), "generate", "qwen2-math", "00000", 100.0, lost=20.0)
    write_sidecar(generate("qwen2-math", "00001"), "generate", "qwen2-math", "00001", 80.0)
    # SIGKILLed a day ago in its second attempt (the first one was stopped by SIGTERM).
    write_chunks(generate("deepseek-math", "00000"), [0, 16], [
        attempt(1, LONG_AGO, LONG_AGO + 50, "interrupted by SIGTERM"),
        attempt(2, LONG_AGO + 100, LONG_AGO + 160, "running")])
    write_log(results, "generate", "deepseek-math/00000")
    write_chunks(generate("deepseek-math", "00001"), [0], [attempt(1, time.time() - 100, time.time() - 5, "running")])
    write_log(results, "generate", "deepseek-math/00001")

    write_sidecar(shard_out(results, "filter", "qwen2-math", "00000"), "filter", "qwen2-math", "00000", 30.0)
    write_log(results, "filter", "qwen2-math/00001", "ValueError: no questions in the shard")
    write_chunks(shard_out(results, "filter", "deepseek-math", "00000"), [],
                 [attempt(1, LONG_AGO, LONG_AGO + 40, "failed: ValueError")])
    write_log(results, "filter", "deepseek-math/00000", "ValueError: bad judge answer")
    # An earlier attempt's traceback, then a retry that has just begun: not failed.
    write_log(results, "respond", "qwen2-math/00000", "RuntimeError: CUDA out of memory", "")

    labels = results / "train" / "difficulty" / "labels" / "00000.parquet"
    write_sidecar(labels, "difficulty_labels", "seeds", "00000", 200.0)
    (results / "train" / "qft" / "qwen2-math" / "model").mkdir(parents=True)
    write_log(results, "qft", "deepseek-math", "torch.distributed.DistNetworkError: timed out")


def files_of(results: Path, stage: str) -> tuple[list[Path], list[Path]]:
    """A stage's sidecars and chunk folders on disk."""
    folder = results / "train" / "difficulty" / "labels" if stage == "difficulty_labels" else results / stage
    pattern = "*" if stage == "difficulty_labels" else "*/*"
    return sorted(folder.glob(f"{pattern}.stats.json")), sorted(folder.glob(f"{pattern}.chunks"))


def config_files(tmp_path: Path) -> list[Path]:
    """The tiny config, with its results in tmp_path and chunks of CHUNK_SIZE."""
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"results": str(tmp_path / "results"), "chunk_size": CHUNK_SIZE,
                                        "models": {"tiny-lm": {"batch_size": CHUNK_SIZE}}}))
    return [REPO / "config.yaml", REPO / "presets" / "tiny.yaml", override]


def status_cli(tmp_path: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "scalequest.status", "--configfile",
                             *map(str, config_files(tmp_path)), *args],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_status_counts_what_is_on_disk(tmp_path):
    results = tmp_path / "results"
    build_tree(results)
    config = load_config_files(*config_files(tmp_path))
    status = json.loads(status_cli(tmp_path, "--json"))
    plan = {row["stage"]: row for row in build_plan(config)["stages"]}
    by_stage = {row["stage"]: row for row in status["stages"]}
    assert list(by_stage) == list(plan)
    for stage, row in by_stage.items():
        assert row["jobs"] == plan[stage]["jobs"] == sum(row[state] for state in STATES), stage
        if stage in ("qft", "qpo_sample", "qpo_rewrite", "qpo_train", "difficulty_train"):
            continue
        sidecars, folders = files_of(results, stage)
        assert row["done"] == len(sidecars), stage
        assert row["chunks_done"] == sum(1 for f in folders for p in f.iterdir() if CHUNK_FILE.fullmatch(p.name))
    assert by_stage["qft"]["done"] == 1 and by_stage["qft"]["spent_basis"] == "planned"

    # Spent: the sidecars' seconds and lost seconds, and the unfinished shards' attempts, times the GPUs.
    sidecars, folders = files_of(results, "generate")
    seconds = {}
    for path in sidecars:
        payload = json.loads(path.read_text())
        seconds[payload["generator"]] = seconds.get(payload["generator"], 0.0) + payload["seconds"] + \
            payload.get("interruptions", {}).get("lost_seconds", 0.0)
    done_hours = sum(s * job_gpus(config, "generate", gen) for gen, s in seconds.items()) / 3600
    open_hours = sum((a["last_seen"] - a["started"]) * job_gpus(config, "generate", folder.parent.name)
                     for folder in folders for a in json.loads((folder / ATTEMPTS_FILE).read_text())) / 3600
    generate = by_stage["generate"]
    assert abs(generate["gpu_hours_spent"] - (done_hours + open_hours)) < 1e-3
    assert generate["to_go_basis"] == "measured"
    assert abs(generate["gpu_hours_to_go"] - done_hours / len(sidecars) * (generate["jobs"] - len(sidecars))) < 1e-3
    respond = by_stage["respond"]  # nothing finished: the plan's figures
    assert respond["to_go_basis"] == "planned" and respond["gpu_hours_to_go"] == plan["respond"]["gpu_hours"]

    states = {(s["stage"], s["generator"], s["shard"]): s for s in status["shards"]}
    failed = {key: s for key, s in states.items() if s["state"] == "failed"}
    assert set(failed) == {("generate", "deepseek-math", "00000"), ("filter", "qwen2-math", "00001"),
                           ("filter", "deepseek-math", "00000"), ("qft", "deepseek-math", "00000")}
    assert all(Path(s["log"]).is_file() for s in failed.values())
    assert "no heartbeat" in failed["generate", "deepseek-math", "00000"]["reason"]
    assert failed["generate", "deepseek-math", "00000"]["chunks"] == 2
    assert failed["filter", "qwen2-math", "00001"]["reason"] == "ValueError: no questions in the shard"
    assert failed["filter", "deepseek-math", "00000"]["reason"].startswith("failed: ValueError")
    running = [s for s in states.values() if s["state"] == "running"]
    assert [(s["stage"], s["generator"], s["shard"], s["chunks"], s["chunks_expected"]) for s in running] == \
        [("generate", "deepseek-math", "00001", 1, config["generate"]["shard_size"] // CHUNK_SIZE)]
    assert [key for key, s in states.items() if s["state"] == "started"] == [("respond", "qwen2-math", "00000")]

    text = status_cli(tmp_path)
    for s in failed.values():
        assert f"log: {s['log']}" in text


def test_status_of_a_run_not_started(tmp_path):
    """Every job of the plan is found, waiting, for the tiny and the full-scale config."""
    for config in (tiny_config(), full_config()):
        status = run_status({**config, "results": str(tmp_path / "none")})
        assert status["total"]["waiting"] == status["total"]["jobs"] == build_plan(config)["total"]["jobs"]
        assert status["shards"] == [] and status["total"]["gpu_hours_spent"] == 0


def tiny_results(tmp_path: Path) -> tuple[dict, Path]:
    """The tiny config with its results in tmp_path, and that folder."""
    results = tmp_path / "results"
    return {**tiny_config(), "results": str(results)}, results


GOOD = json.dumps({"questions": {"unit": "question", "in": 4, "kept": 4, "dropped": {}}, "seconds": 100.0})
BAD_SIDECARS = {  # what a sidecar holds -> what status says is wrong with it
    "truncated JSON": (GOOD[:50], "not valid JSON, cut short?"),
    "empty file": ("", "empty file"),
    "only whitespace": ("\n  \n", "empty file"),
    "not UTF-8": (b"\xff\xfe{}", "unreadable"),
    "a list": ("[1, 2]", "holds an array, not a JSON object"),
    "a string": ('"done"', "holds a string, not a JSON object"),
    "null": ("null", "holds null, not a JSON object"),
    "no questions funnel": ('{"seconds": 100.0}', "no 'questions' funnel"),
    "funnel without counts": ('{"questions": {"unit": "question"}, "seconds": 1}', "'questions': malformed funnel"),
    "funnel a list": ('{"questions": [], "seconds": 1}', "'questions': malformed funnel"),
    "funnel does not add up": ('{"questions": {"unit": "question", "in": 5, "kept": 4, "dropped": {}}, "seconds": 1}',
                               "in (5) != kept (4) + dropped (0)"),
    "seconds a string": (GOOD.replace("100.0", '"100"'), "'seconds' is \"100\", not a number of seconds"),
    "seconds a boolean": (GOOD.replace("100.0", "true"), "'seconds' is true, not a number of seconds"),
    "seconds negative": (GOOD.replace("100.0", "-5"), "'seconds' is -5, not a number of seconds"),
    "seconds null": (GOOD.replace("100.0", "null"), "'seconds' is null, not a number of seconds"),
    "interruptions a list": (GOOD[:-1] + ', "interruptions": []}', "'interruptions' holds an array"),
    "lost seconds a string": (GOOD[:-1] + ', "interruptions": {"lost_seconds": "3"}}',
                              "'interruptions.lost_seconds' is \"3\", not a number of seconds"),
}


@pytest.mark.parametrize("case", BAD_SIDECARS)
def test_a_bad_sidecar_is_listed_and_the_report_goes_on(tmp_path, case):
    """A bad sidecar withholds nothing: its shard counts as done, of unknown time (not zero), the measured
    figures come from the stage's good shards, and the report lists the sidecar with why."""
    config, results = tiny_results(tmp_path)
    good, bad = (stats_path(shard_out(results, "generate", "qwen2-math", shard)) for shard in ("00000", "00001"))
    good.parent.mkdir(parents=True)
    good.write_text(GOOD)
    content, why = BAD_SIDECARS[case]
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())

    status = run_status(config)
    generate = next(row for row in status["stages"] if row["stage"] == "generate")
    assert (generate["done"], generate["done_time_unknown"], status["total"]["done_time_unknown"]) == (2, 1, 1)
    hours = 100.0 * job_gpus(config, "generate", "qwen2-math") / 3600
    assert generate["gpu_hours_spent"] == round(hours, 3) and generate["gpu_hours_per_job"]["measured"] == \
        round(hours, 3)
    [listed] = status["bad_sidecars"]
    assert (listed["stage"], listed["generator"], listed["shard"], listed["sidecar"]) == \
        ("generate", "qwen2-math", "00001", str(bad))
    assert why in listed["problem"] and status["sidecars_without_seconds"] == []
    text = render_status(status)
    assert f"generate qwen2-math/00001: {listed['problem']}\n    sidecar: {bad}\n" in text
    assert "delete the sidecar and its shard" in text and f">={hours:.3f} meas" in text


def test_an_older_sidecar_without_seconds_is_of_unknown_time(tmp_path, capsys):
    """A sidecar of an older version (no `seconds`, or interruptions without `lost_seconds`) is no error: its
    shard is done, its time unknown, and the output says so instead of counting it as zero."""
    config, results = tiny_results(tmp_path)
    write_sidecar(shard_out(results, "generate", "qwen2-math", "00000"), "generate", "qwen2-math", "00000", 100.0)
    older = [stats_path(shard_out(results, "generate", gen, "00001")) for gen in ("qwen2-math", "deepseek-math")]
    older[0].write_text(GOOD.replace(', "seconds": 100.0', ""))
    older[1].parent.mkdir(parents=True)
    older[1].write_text(GOOD[:-1] + ', "interruptions": {"attempts": 2}}')

    status = run_status(config)
    generate = next(row for row in status["stages"] if row["stage"] == "generate")
    assert (generate["done"], generate["done_time_unknown"]) == (3, 2)
    assert status["bad_sidecars"] == [] and status["sidecars_without_seconds"] == sorted(map(str, older))
    hours = 100.0 * job_gpus(config, "generate", "qwen2-math") / 3600
    assert generate["gpu_hours_per_job"]["measured"] == round(hours, 3)  # the shards of unknown time left out
    assert generate["gpu_hours_to_go"] == round(hours * (generate["jobs"] - 3), 3)
    text = render_status(status)
    assert "Finished shards of unknown time: 2 (their sidecars: 2 of an older version, without 'seconds'" in text
    assert f">={hours:.3f} meas" in text and "Bad sidecars" not in text


def write_config(folder: Path, name: str, settings: dict) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(settings))
    return path


def status_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = status_main_code(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("layout", ["no folder", "a preset's run below", "only a plan and preflight"])
def test_no_run_found_says_so(tmp_path, monkeypatch, capsys, layout):
    """A folder with no run (a typo in `results`, the demo's folder read without its preset, a plan made but
    not run) is no run of 0/N jobs: status says no run was found, which file set `results`, where a run is,
    and shows the plan of a fresh run, not a run's status; it exits 3."""
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "presets", "tiny.yaml", {"results": "results/tiny"})
    if layout == "a preset's run below":
        write_log(Path("results/tiny"), "generate", "qwen2-math/00000")
    if layout == "only a plan and preflight":
        for log in ("plan.log", "preflight/gpu/cpu.log"):
            (tmp_path / "results" / "logs" / log).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "results" / "logs" / log).write_text("planned\n")
    typo = write_config(tmp_path, "my.yaml", {"results": "resluts" if layout == "no folder" else "results"})

    code, out, err = status_main(capsys, "--configfile", str(REPO / "config.yaml"), str(typo))
    err = " ".join(err.split())  # as wrapped for the terminal
    assert code == EXIT_NO_RUN == 3
    assert err.startswith(f"status: no run found in {tmp_path / ('resluts' if layout == 'no folder' else 'results')}")
    assert ("the folder does not exist" in err) == (layout == "no folder")
    assert f"set by {typo}, the last of the config files" in err
    hint = "A run is in results/tiny, the `results` of presets/tiny.yaml."
    assert (hint in err) == (layout == "a preset's run below")
    assert "Run status of" not in out and out.startswith("The plan of a fresh run into")
    plan = build_plan(load_config_files(REPO / "config.yaml", typo))
    total, with_evaluation = plan["total"], plan["total_with_evaluation"]
    assert f"\n{'total':<18} {total['jobs']:>6} {total['gpu_hours']:>14.3f}\n" in out
    # config.yaml's evaluation is on: its rows follow, and rule evaluate's job (no GPU) beside the plan's
    assert out.rstrip().endswith(f"{with_evaluation['jobs'] + 1:>6} {with_evaluation['gpu_hours']:>14.3f}")

    code, out, err = status_main(capsys, "--json", "--configfile", str(REPO / "config.yaml"), str(typo))
    assert code == 3 and json.loads(out)["run_found"] is False and "no run found" in err


def test_a_run_just_begun_is_found(tmp_path, monkeypatch, capsys):
    """The log of a job before the GPU stages (seed questions) is a run's trace: its status, exit 0."""
    monkeypatch.chdir(tmp_path)
    write_log(tmp_path / "results", "seed_questions", "seed_questions")
    code, out, err = status_main(capsys, "--configfile", str(REPO / "config.yaml"))
    assert (code, err) == (0, "") and out.startswith(f"Run status of {tmp_path / 'results'}")


def test_help_names_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        status_main_code(["--help"])
    assert "3 no run found in the results folder" in " ".join(capsys.readouterr().out.split())


# ---- training jobs: checkpoints, failed tries, measured seconds; the evaluation's jobs

NOW = time.time()


def model_out(results: Path, kind: str, gen: str) -> Path:
    return results / "train" / kind / gen / "model"


def write_checkpoint(out: Path, step: int, max_steps: int, made: float | None, signal: str | None = None) -> Path:
    """A checkpoint in `out`.checkpoints; `made` None: one cut short (no record: not every rank saved)."""
    folder = checkpoints_dir_of(out) / f"{CHECKPOINT_PREFIX}{step}"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\0" * 8)
    if made is not None:
        (folder / MARKER).write_text(json.dumps({"settings": {"seed": "abc"}, "time": made, "step": step,
                                                 "max_steps": max_steps, "signal": signal}))
    return folder


def write_failed_tries(out: Path, *tries: tuple[float, float, float]) -> None:
    """attempts.json of the tries that ended without a model: (started, ended, lost_seconds) each."""
    folder = checkpoints_dir_of(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRAINING_ATTEMPTS).write_text(json.dumps([{"started": s, "ended": e, "lost_seconds": lost}
                                                         for s, e, lost in tries]))


def training_log(results: Path, rule: str, name: str, written: float, *errors: str) -> Path:
    log = write_log(results, rule, name, *errors)
    os.utime(log, (written, written))
    return log


def write_model(out: Path, **metrics) -> Path:
    """A trained model's folder and its training_metrics.json (an older version's: without seconds)."""
    out.mkdir(parents=True)
    (out / METRICS_FILE).write_text(json.dumps({"kind": "qft", "world_size": 1, "steps": 10, **metrics}))
    return out / METRICS_FILE


def unfinished(status: dict) -> dict:
    return {(s["stage"], s["generator"]): s for s in status["shards"]}


def row_of(status: dict, stage: str) -> dict:
    return next(row for row in status["stages"] + status["evaluation"] if row["stage"] == stage)


def test_training_jobs_show_their_last_checkpoint_and_failed_tries(tmp_path):
    """A training try in progress shows its last complete checkpoint (step of max_steps, when); one that ended
    without a model (attempts.json) and no try since is failed, interrupted, with its failed tries, their time
    counted as spent; a retry in progress is started again; one with a log alone is as before."""
    config, results = tiny_results(tmp_path)
    # qft qwen2-math: the first try, running: two complete checkpoints, a third one being written.
    running = model_out(results, "qft", "qwen2-math")
    write_checkpoint(running, 100, 400, NOW - 1800)
    write_checkpoint(running, 200, 400, NOW - 600)
    write_checkpoint(running, 300, 400, None)
    training_log(results, "qft", "qwen2-math", NOW - 5)
    # qft deepseek-math: preempted 20 min ago after its checkpoint on SIGTERM, no error in its log, no retry yet.
    interrupted = model_out(results, "qft", "deepseek-math")
    write_checkpoint(interrupted, 150, 400, NOW - 1260, signal="SIGTERM")
    write_failed_tries(interrupted, (NOW - 4200, NOW - 1200, 60.0))
    training_log(results, "qft", "deepseek-math", NOW - 1200)
    # qpo_train qwen2-math: two failed tries, the last with a traceback; no checkpoint at all.
    crashed = model_out(results, "qpo", "qwen2-math")
    write_failed_tries(crashed, (NOW - 9000, NOW - 8000, 1000.0), (NOW - 7000, NOW - 6500, 500.0))
    training_log(results, "qpo_train", "qwen2-math", NOW - 6499, "", "TrainingError: qpo training failed (exit 1)")
    # qpo_train deepseek-math: its retry began after the failed try (the log written since).
    retried = model_out(results, "qpo", "deepseek-math")
    write_checkpoint(retried, 40, 80, NOW - 3000)
    write_failed_tries(retried, (NOW - 6000, NOW - 2900, 100.0))
    training_log(results, "qpo_train", "deepseek-math", NOW - 30, "TrainingError: failed (exit 75)", "")
    # difficulty_train: a log, no checkpoint yet: as before.
    (results / "logs").mkdir(parents=True, exist_ok=True)
    (results / "logs" / "difficulty_train.log").write_text(where_it_runs("difficulty_train") + "\n")

    status = run_status(config, now=NOW)
    jobs = unfinished(status)
    first = jobs["qft", "qwen2-math"]
    assert first["state"] == "started" and first["reason"] is None and first["failed_tries"] == 0
    assert first["checkpoint"] == {"step": 200, "max_steps": 400, "time": NOW - 600, "signal": None,
                                   "path": str(running) + ".checkpoints/checkpoint-200"}
    stopped = jobs["qft", "deepseek-math"]
    assert stopped["state"] == "failed" and stopped["reason"].startswith("interrupted 20.0 min ago, no try since")
    assert (stopped["checkpoint"]["step"], stopped["failed_tries"], stopped["lost_seconds"], stopped["seconds"]) == \
        (150, 1, 60.0, 3000.0)
    failed = jobs["qpo_train", "qwen2-math"]
    assert (failed["state"], failed["reason"], failed["checkpoint"], failed["failed_tries"]) == \
        ("failed", "TrainingError: qpo training failed (exit 1)", None, 2)
    again = jobs["qpo_train", "deepseek-math"]
    assert (again["state"], again["reason"], again["failed_tries"]) == ("started", None, 1)
    assert jobs["difficulty_train", "seeds"]["state"] == "started"

    gpus = next(row for row in build_plan(config)["stages"] if row["stage"] == "qft")["gpus_per_job"]
    qft, qpo = row_of(status, "qft"), row_of(status, "qpo_train")
    assert (qft["started"], qft["failed"], qft["done"]) == (1, 1, 0)
    assert qft["gpu_hours_spent"] == round(3000.0 * gpus / 3600, 3) and qft["spent_basis"] == "measured"
    assert qpo["gpu_hours_spent"] == round((1000 + 500 + 3100) * gpus / 3600, 3)

    text = render_status(status)
    saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(NOW - 600))
    assert (f"  qft qwen2-math: its log last written 5 s ago\n"
            f"    last checkpoint: step 200 of 400 (50%), saved 10.0 min ago ({saved})\n"
            f"    log: {results}/logs/qft/qwen2-math.log\n") in text
    assert ("  qft deepseek-math: interrupted 20.0 min ago, no try since (no error in its log: time limit, "
            "preemption, node lost?)\n"
            "    last checkpoint: step 150 of 400 (38%), saved 21.0 min ago") in text
    assert "on SIGTERM\n    failed tries: 1, 1.0 min lost after their last checkpoint\n    log: " in text
    assert ("  qpo_train qwen2-math: TrainingError: qpo training failed (exit 1)\n"
            "    last checkpoint: none, a retry starts from step 0\n"
            "    failed tries: 2, 25.0 min lost after their last checkpoint\n") in text
    assert ("  qpo_train deepseek-math: its log last written 30 s ago\n"
            "    last checkpoint: step 40 of 80 (50%), saved 50.0 min ago") in text
    assert "  difficulty_train seeds: nothing on disk but its log\n" in text
    assert text.index("qft deepseek-math") < text.index("Started (") < text.index("qft qwen2-math: its log")


def test_a_training_try_killed_without_a_log_is_failed(tmp_path):
    """Failed tries and no log (deleted, or never written on this file system): failed, not waiting."""
    config, results = tiny_results(tmp_path)
    write_failed_tries(model_out(results, "qft", "qwen2-math"), (NOW - 100, NOW - 50, 50.0))
    [job] = run_status(config, now=NOW)["shards"]
    assert (job["stage"], job["state"], job["log_written"]) == ("qft", "failed", None)
    assert "interrupted" in job["reason"]


def test_finished_training_jobs_spend_their_measured_seconds(tmp_path):
    """A model's training_metrics.json `seconds` + `interruptions.lost_seconds`, times the plan row's GPUs, is
    what it spent; a model of an older version (no `seconds`) or with bad metrics counts the plan's GPU-h, and
    the report says so; to go comes from the measured ones."""
    config, results = tiny_results(tmp_path)
    config["plan"] = {**config["plan"], "gpus_per_training_job": 4}
    plan = {row["stage"]: row for row in build_plan(config)["stages"] + build_plan(config)["evaluation"]}
    write_model(model_out(results, "qft", "qwen2-math"), seconds=1000.0,
                interruptions={"attempts": 2, "lost_seconds": 200.0})
    older = write_model(model_out(results, "qft", "deepseek-math"))
    write_model(model_out(results, "qpo", "qwen2-math"), kind="qpo", seconds=360.0,
                interruptions={"attempts": 1, "lost_seconds": 0.0})
    bad = write_model(results / "train" / "difficulty" / "scorer", kind="scorer", seconds="soon")

    status = run_status(config, now=NOW)
    qft, qpo, scorer = (row_of(status, stage) for stage in ("qft", "qpo_train", "difficulty_train"))
    assert plan["qft"]["gpus_per_job"] == 4
    measured = 1200.0 * 4 / 3600
    planned = plan["qft"]["gpu_hours"] / plan["qft"]["jobs"]
    assert (qft["done"], qft["spent_basis"], qft["done_time_planned"], qft["done_time_unknown"]) == (2, "mixed", 1, 0)
    assert qft["gpu_hours_spent"] == round(measured + planned, 3)
    assert qft["gpu_hours_per_job"] == {"planned": round(planned, 3), "measured": round(measured, 3)}
    assert (qpo["spent_basis"], qpo["to_go_basis"], qpo["gpu_hours_spent"]) == ("measured", "measured", 0.4)
    assert qpo["gpu_hours_to_go"] == round(0.4 * (qpo["jobs"] - 1), 3)
    assert (scorer["spent_basis"], scorer["gpu_hours_spent"], scorer["to_go_basis"]) == \
        ("planned", round(plan["difficulty_train"]["gpu_hours"], 3), "planned")
    assert status["models_without_seconds"] == [str(older)]
    assert status["bad_training_metrics"] == [{"stage": "difficulty_train", "generator": "seeds", "metrics": str(bad),
                                               "problem": "'seconds' is \"soon\", not a number of seconds"}]
    assert status["total"]["done_time_planned"] == 2 and status["sidecars_without_seconds"] == []

    text = render_status(status)
    assert re.search(rf"\nqft +2/2 .* {measured + planned:.3f} mix +0\.000 meas +{planned:.3f} / {measured:.3f}\n",
                     text)
    assert re.search(r"\nqpo_train +1/2 .* 0\.400 meas +0\.400 meas", text)
    assert re.search(r"\ndifficulty_train +1/1 .* \d+\.\d{3} plan +0\.000 plan", text)
    assert ("Trained models counted at the plan's GPU-h per job: 2 (their training_metrics.json: 1 of an older "
            f"version, without 'seconds', e.g. {older}; 1 that could not be read, listed below).") in \
        " ".join(text.split())
    assert f"  difficulty_train seeds: 'seconds' is \"soon\", not a number of seconds\n    metrics: {bad}\n" in text
    assert "Finished shards of unknown time" not in text and ">=" not in text


def eval_answers_out(results: Path, label: str, dataset: str, shard: str) -> Path:
    return results / "evaluation" / "answers" / label / dataset / "tiny" / f"{shard}.parquet"


def test_the_evaluation_jobs_are_listed(tmp_path, monkeypatch):
    """With the evaluation on, status has its rows apart (sft, eval_answers, rule evaluate), each job from its
    files: the SFT model and its metrics, the answers' sidecars, chunks and attempts, the scores; an evaluated
    benchmark left out for want of its file has no jobs."""
    monkeypatch.setenv("SCALEQUEST_SHARED_DATA", str(tmp_path / "no-data"))
    config, results = tiny_results(tmp_path)
    config["evaluation"] = {**config["evaluation"], "benchmarks": ["tiny", "gsm8k"]}  # gsm8k: optional, absent
    plan = {row["stage"]: row for row in build_plan(config)["evaluation"]}
    sft = results / "evaluation" / "sft" / "tiny-lm" / "scalequest" / "model"
    write_model(sft, kind="sft", seconds=600.0, interruptions={"attempts": 1, "lost_seconds": 0.0})
    write_sidecar(eval_answers_out(results, "tiny-lm", "none", "00000"), "eval_answers", "tiny-lm/none/tiny", "00000",
                  36.0, lost=0.0)
    write_chunks(eval_answers_out(results, "tiny-lm", "none", "00001"), [0, 16],
                 [attempt(1, NOW - 100, NOW - 5, "running")])
    write_log(results, "eval_answers", "tiny-lm/scalequest/tiny/00000", "RuntimeError: CUDA out of memory")
    write_log(results, "evaluate", "", "KeyError: 'tiny'")
    (results / "logs" / "evaluate" / ".log").rename(results / "logs" / "evaluate.log")

    status = run_status(config, now=NOW)
    assert [row["stage"] for row in status["evaluation"]] == ["sft", "eval_answers", "evaluation"]
    answers = row_of(status, "eval_answers")
    assert plan["eval_answers"]["jobs"] == 2 * 2 * 1 + 2 * 1  # tiny: 2 shards, gsm8k: 1, for 2 evaluated rows
    assert (answers["jobs"], answers["done"], answers["running"], answers["failed"], answers["waiting"]) == \
        (4, 1, 1, 1, 1)
    assert answers["chunks_done"] == 2
    gpus = job_gpus(config, "eval_answers", "tiny-lm/none/tiny")
    assert answers["gpu_hours_per_job"]["measured"] == round(36.0 * gpus / 3600, 3)
    assert row_of(status, "sft")["gpu_hours_spent"] == round(600.0 * plan["sft"]["gpus_per_job"] / 3600, 3)
    assert (row_of(status, "evaluation")["failed"], row_of(status, "evaluation")["gpu_hours_spent"]) == (1, 0.0)
    synthesis = sum(row["jobs"] for row in status["stages"])
    assert status["total"]["jobs"] == synthesis and status["total_with_evaluation"]["jobs"] == synthesis + 1 + 4 + 1
    jobs = {(s["stage"], s["generator"], s["shard"]): s for s in status["shards"]}
    assert jobs["eval_answers", "tiny-lm/none/tiny", "00001"]["state"] == "running"
    assert jobs["eval_answers", "tiny-lm/scalequest/tiny", "00000"]["reason"] == "RuntimeError: CUDA out of memory"
    assert jobs["evaluation", "scores", "00000"]["reason"] == "KeyError: 'tiny'"

    text = render_status(status)
    assert re.search(r"\ntotal +\d+/\d+ .*\nsft +1/1 .*\neval_answers +1/4 +1 +1 +0 +2 .*\nevaluation +0/1 .*\n"
                     r"total with eval\. +\d+/\d+ ", text)
    assert "  eval_answers tiny-lm/none/tiny/00001: 2 of 4 chunks, attempt 1 on node7, Slurm job 4242" in text
    assert f"log: {results}/logs/eval_answers/tiny-lm/scalequest/tiny/00000.log" in text
    assert f"  evaluation: KeyError: 'tiny'\n    log: {results}/logs/evaluate.log" in text


@pytest.mark.parametrize("started", [False, True])
def test_the_evaluation_is_left_out_when_off(tmp_path, started):
    """Evaluation off: no rows of it, but where `snakemake evaluate` has begun it (its folder is there)."""
    config, results = tiny_results(tmp_path)
    config["evaluation"] = {**config["evaluation"], "enabled": False}
    if started:
        (results / "evaluation" / "datasets").mkdir(parents=True)
    status = run_status(config, now=NOW)
    assert [row["stage"] for row in status["evaluation"]] == (["sft", "eval_answers", "evaluation"] if started else [])
    assert ("total with eval." in render_status(status)) == started
    assert status["total_with_evaluation"]["jobs"] == status["total"]["jobs"] + (1 + 4 + 1 if started else 0)
