"""`python -m scalequest.status` on a results tree made by hand for the tiny config: finished shards
(sidecars), a job SIGKILLed long ago (its chunks and attempts left), one running (a fresh heartbeat), failed
ones (a bad outcome, a traceback in the log), a retry just started; every figure checked against the files."""
from __future__ import annotations

import json
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
    total = build_plan(load_config_files(REPO / "config.yaml", typo))["total"]
    assert out.rstrip().endswith(f"{total['jobs']:>6} {total['gpu_hours']:>14.3f}")

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
