"""Where a long run stands, from its files alone: per stage the shards done, the chunks of unfinished ones,
the GPU-hours spent and still to go, and the shards that failed with their logs; training jobs with their last
checkpoint and failed tries; the evaluation's jobs too where it is on. It reads the config, the sidecars, the
chunk folders (scalequest/chunks.py), the training checkpoints and metrics (scalequest/training/checkpoints.py)
and the logs; it needs neither Snakemake nor Slurm, writes nothing, and is safe to run beside the controller.

    python -m scalequest.status --configfile config.yaml my.yaml [--json]

`results` is read relative to the current folder, as the workflow does (run it from the checkout). A sidecar
that cannot be read is listed, not fatal; one of an older version without `seconds` counts as of unknown time, and
a model of an older version (training_metrics.json without `seconds`) as the plan's GPU-hours."""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .chunks import CHUNK_FILE, HEARTBEAT_SECONDS, chunks_dir, read_attempts
from .config import ConfigError, evaluation_rows, load_config_files, trained_generators
from .config_files import load_config_file
from .decontam import benchmarks_in_use
from .gpu_jobs import job_gpus
from .plan import build_plan
from .registry import ENGINE, TRAINING, job_of
from .shards import shard_ids
from .stats import Funnel, StatsError, stats_path
from .training.checkpoints import PREFIX, checkpoint_step, checkpoints_dir, read_record
from .training.checkpoints import read_attempts as failed_tries
from .training.job import METRICS_FILE

STALE_SECONDS = 3 * HEARTBEAT_SECONDS  # a "running" attempt not seen for this long was killed (SIGKILL, node loss)
TRACEBACK = "Traceback (most recent call last):"
ATTEMPT_HEADER = "\n== rule "  # joblog.where_it_runs: each attempt appends one to the log
LOG_TAIL_BYTES = 64 * 1024  # a traceback fits; the logs of long jobs (progress bars) do not need reading whole
STATES = ("done", "running", "failed", "started", "waiting")
# started: a log or chunks on disk, but no heartbeat, no bad outcome and no traceback: a job starting, a
# training job (no heartbeat), or one killed before its first heartbeat.
# The logs a user makes before a run (`snakemake plan`, the preflight): no trace of a run.
BEFORE_A_RUN = ("plan.log", "preflight")
# A training try that ended without a model records itself (attempts.json) and then writes at most its traceback
# to the log: a log written later than this after it ended is a newer try's (the clocks of the node and of the
# file server may differ by a few seconds).
RETRY_SLACK_SECONDS = 10.0
# The evaluation's rows beside the plan's (sft, eval_answers): rule evaluate, a local job of no GPU that writes
# the scores (rules/evaluation.smk).
EVALUATE_ROW = {"stage": "evaluation", "jobs": 1, "gpu_hours": 0.0, "gpus_per_job": 0}
BASIS = {"measured": "meas", "planned": "plan", "mixed": "mix"}
EXIT_CONFIG, EXIT_NO_RUN = 1, 3  # argparse exits 2 on bad arguments
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}


@dataclass(frozen=True)
class Shard:
    """One job's output as the rules name it: a shard (its sidecar beside it), a trained model's folder
    (`training`: its checkpoints in `<output>.checkpoints`), or a file written whole at the end (`whole`)."""

    stage: str
    generator: str
    shard: str
    output: Path
    log: Path
    training: bool = False
    whole: bool = False


def stage_shards(config: Mapping[str, Any], stage: str) -> list[Shard]:
    """Every job of a planned stage (or of the evaluation's rule evaluate, stage "evaluation"), with the paths
    the rule files give it (rules/common.smk, rules/qpo.smk, rules/difficulty.smk, rules/evaluation.smk)."""
    results = Path(config["results"])
    logs = results / "logs" / job_of(stage).rule
    evaluation = config["evaluation"]
    if stage == "sft":
        return [Shard(stage, f"{model}/{dataset}", "00000", results / "evaluation" / "sft" / model / dataset / "model",
                      logs / model / f"{dataset}.log", training=True)
                for model in evaluation["base_models"] for dataset in evaluation["datasets"]]
    if stage == "eval_answers":
        # The benchmarks the workflow evaluates: optional ones whose file is not there are left out (common.smk).
        declared = config["release"]["decontamination"]["benchmarks"]
        benchmarks, _ = benchmarks_in_use({name: declared[name] for name in evaluation["benchmarks"]})
        return [Shard(stage, f"{row['label']}/{row['dataset']}/{bench}", shard,
                      results / "evaluation" / "answers" / row["label"] / row["dataset"] / bench / f"{shard}.parquet",
                      logs / row["label"] / row["dataset"] / bench / f"{shard}.log")
                for row in evaluation_rows(config) for bench in benchmarks
                for shard in shard_ids(evaluation["shards"].get(bench, 1), 1)]
    if stage == "evaluation":
        return [Shard(stage, "scores", "00000", results / "evaluation" / "scores.json",
                      results / "logs" / "evaluate.log", whole=True)]
    if stage in ("qft", "qpo_train", "qpo_sample", "qpo_rewrite"):
        folder, name = {"qft": ("qft", "model"), "qpo_train": ("qpo", "model"),
                        "qpo_sample": ("qpo", "samples.parquet"), "qpo_rewrite": ("qpo", "pairs.parquet")}[stage]
        return [Shard(stage, gen, "00000", results / "train" / folder / gen / name, logs / f"{gen}.log",
                      training=name == "model") for gen in trained_generators(config, folder)]  # folder: the kind
    if stage == "difficulty_labels":
        parts = shard_ids(config["seeds"]["max_questions"], config["difficulty"]["labels"]["shard_size"])
        return [Shard(stage, "seeds", part, results / "train" / "difficulty" / "labels" / f"{part}.parquet",
                      logs / f"{part}.log") for part in parts]
    if stage == "difficulty_train":
        return [Shard(stage, "seeds", "00000", results / "train" / "difficulty" / "scorer",
                      results / "logs" / "difficulty_train.log", training=True)]
    # A file generator's questions are imported on a CPU, not generated: the plan has no job for them.
    generators = [gen for gen, entry in sorted(config["generators"].items()) if stage != "generate" or "model" in entry]
    return [Shard(stage, gen, shard, results / stage / gen / f"{shard}.parquet", logs / gen / f"{shard}.log")
            for gen in generators
            for shard in shard_ids(config["generators"][gen]["questions"], config["generate"]["shard_size"])]


def _chunk_files(folder: Path) -> list[str]:
    """The finished chunks' names (by name: a chunk file can be megabytes, and its count is all status needs)."""
    try:
        return sorted(name for name in os.listdir(folder) if CHUNK_FILE.fullmatch(name))
    except OSError:
        return []


def _log_error(log: Path) -> str | None:
    """The last line of the traceback the log ends with (after its last attempt's header), else None."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(handle.seek(0, os.SEEK_END) - LOG_TAIL_BYTES, 0))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    at = tail.rfind(TRACEBACK)
    if at < 0 or ATTEMPT_HEADER in tail[at:]:
        return None
    lines = [line.strip() for line in tail[at:].splitlines() if line.strip()]
    return lines[-1] if len(lines) > 1 else TRACEBACK


def _may_be_alive(attempt: Mapping[str, Any]) -> bool:
    """False when the attempt ran on this machine and its process is gone; else its heartbeat must tell."""
    if attempt.get("host") != socket.gethostname() or not attempt.get("pid"):
        return True
    try:
        os.kill(attempt["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that number
        return True
    return True


def _json_type(value: Any) -> str:
    return JSON_TYPES.get(type(value), type(value).__name__)


def _seconds(value: Any, key: str) -> float:
    # bool is an int to Python, but `true` is no number of seconds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise StatsError(f"{key} is {json.dumps(value)[:40]}, not a number of seconds")
    return float(value)


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file's object; StatsError saying why (not where) for one that cannot be read or is no object."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StatsError(f"unreadable ({error})") from error
    if not text.strip():
        raise StatsError("empty file (its write was cut short?)")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise StatsError(f"not valid JSON, cut short? ({error})") from error
    if not isinstance(payload, dict):
        raise StatsError(f"holds {_json_type(payload)}, not a JSON object")
    return payload


def _wall_seconds(payload: Mapping[str, Any]) -> float | None:
    """`seconds` + `interruptions.lost_seconds` of a sidecar or training metrics; None where one is missing."""
    seconds = _seconds(payload["seconds"], "'seconds'") if "seconds" in payload else None
    if "interruptions" not in payload:  # a job that does not work in chunks: it loses nothing to interruptions
        return seconds
    interruptions = payload["interruptions"]
    if not isinstance(interruptions, dict):
        raise StatsError(f"'interruptions' holds {_json_type(interruptions)}, not a JSON object")
    lost = (_seconds(interruptions["lost_seconds"], "'interruptions.lost_seconds'")
            if "lost_seconds" in interruptions else None)
    return None if seconds is None or lost is None else seconds + lost


def sidecar_seconds(sidecar: Path) -> float | None:
    """A finished shard's wall seconds from its sidecar: `seconds` and `interruptions.lost_seconds`; None where
    an older version's sidecar lacks one of them. Raises StatsError saying why (not where) for a sidecar that
    cannot be read, is no JSON object, has no sound `questions` funnel, or holds a figure that is no number."""
    payload = _json_object(sidecar)
    if "questions" not in payload:
        raise StatsError("no 'questions' funnel")
    # The funnels are what the jobs after this one read: a broken one fails them, so it is worth naming here.
    for key in ("questions", "responses"):
        if key in payload:
            Funnel.from_json(payload[key], f"'{key}'")
    return _wall_seconds(payload)


def training_seconds(metrics: Path) -> float | None:
    """A trained model's wall seconds over all its tries from its training_metrics.json (scalequest/training/
    launcher.py): `seconds` (productive) + `interruptions.lost_seconds`; None for a model of an older version,
    whose metrics have no `seconds`. StatsError saying why for metrics that cannot be read or hold no number."""
    return _wall_seconds(_json_object(metrics))


def _finished(row: dict[str, Any], sidecar: Path) -> dict[str, Any]:
    """A done shard's row; `seconds` None (unknown) for a sidecar without them or a bad one (`problem`)."""
    try:
        return {**row, "state": "done", "sidecar": str(sidecar), "seconds": sidecar_seconds(sidecar)}
    except StatsError as error:
        return {**row, "state": "done", "sidecar": str(sidecar), "seconds": None, "problem": str(error)}


def _last_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The complete checkpoint of the highest step in a training job's checkpoints folder (one with its record:
    every rank saved), as {step, max_steps, time, signal, path}; None where there is none."""
    try:
        names = [name for name in os.listdir(folder) if name.startswith(PREFIX) and name[len(PREFIX):].isdigit()]
    except OSError:
        return None
    for name in sorted(names, key=lambda name: checkpoint_step(Path(name)), reverse=True):
        record = read_record(folder / name)
        if record is not None:
            return {"step": checkpoint_step(Path(name)), "max_steps": record.get("max_steps"),
                    "time": record.get("time"), "signal": record.get("signal"), "path": str(folder / name)}
    return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _finished_training(row: dict[str, Any], model: Path) -> dict[str, Any]:
    """A trained model's row: `seconds` from its metrics, None (the plan's figure stands in) for a model of an
    older version, or for metrics that cannot be read (`problem`)."""
    metrics = model / METRICS_FILE
    try:
        seconds = training_seconds(metrics) if metrics.exists() else None  # none at all: of an older version too
        return {**row, "state": "done", "metrics": str(metrics), "seconds": seconds}
    except StatsError as error:
        return {**row, "state": "done", "metrics": str(metrics), "seconds": None, "problem": str(error)}


def inspect_training(shard: Shard, now: float) -> dict[str, Any]:
    """A training job's state from its model folder, its checkpoints' folder and its log. Unfinished: its last
    complete checkpoint, its tries that ended without a model (attempts.json: their time is its `seconds` so
    far, what they lost after their last checkpoint `lost_seconds`) and when its log was last written (a
    training job has no heartbeat). Failed: a traceback ends its log, or a try ended without a model and its
    log has not been written since (no new try: killed by the time limit, a preemption, a node failure)."""
    row: dict[str, Any] = {"stage": shard.stage, "generator": shard.generator, "shard": shard.shard,
                           "log": str(shard.log), "training": True}
    if shard.output.exists():  # written whole at the end (atomic_dir)
        return _finished_training(row, shard.output)
    folder = checkpoints_dir(shard.output)
    checkpoint, tries = _last_checkpoint(folder), [t for t in failed_tries(folder) if isinstance(t, dict)]
    if shard.output.exists():  # it finished while we looked (the model is moved in before the folder is removed)
        return _finished_training(row, shard.output)
    written = _mtime(shard.log)
    error = _log_error(shard.log) if written is not None else None
    ended = max((_number(t.get("ended")) for t in tries), default=None)
    reasons = [error] if error else []
    if ended is not None and not error and (written is None or written <= ended + RETRY_SLACK_SECONDS):
        reasons.append(f"interrupted {_duration(max(now - ended, 0.0))} ago, no try since (no error in its log: "
                       "time limit, preemption, node lost?)")
    state = "failed" if reasons else "started" if written is not None or checkpoint or tries else "waiting"
    return {**row, "state": state, "reason": "; ".join(reasons) or None, "checkpoint": checkpoint,
            "failed_tries": len(tries), "lost_seconds": sum((_number(t.get("lost_seconds")) for t in tries), 0.0),
            "seconds": sum((max(_number(t.get("ended")) - _number(t.get("started")), 0.0) for t in tries), 0.0),
            "log_written": written}


def inspect_shard(config: Mapping[str, Any], shard: Shard, now: float) -> dict[str, Any]:
    """A job's state, its wall seconds so far (not yet times its GPUs), and what it left on disk."""
    if shard.training:
        return inspect_training(shard, now)
    row: dict[str, Any] = {"stage": shard.stage, "generator": shard.generator, "shard": shard.shard,
                           "log": str(shard.log)}
    logged = shard.log.exists()
    if shard.whole:  # a file written at the end of a job of no GPU: done, or as its log says
        row["whole"] = True
        if shard.output.exists():
            return {**row, "state": "done", "seconds": 0.0}
        error = _log_error(shard.log) if logged else None
        return {**row, "state": "failed" if error else "started" if logged else "waiting", "reason": error}
    sidecar = stats_path(shard.output)
    if sidecar.exists():
        return _finished(row, sidecar)
    folder = chunks_dir(shard.output)
    attempts = read_attempts(folder)
    chunks = _chunk_files(folder)
    if sidecar.exists():  # it finished while we looked (the sidecar is written before the chunks are removed)
        return _finished(row, sidecar)
    last = attempts[-1] if attempts else {}
    outcome, seen = last.get("outcome"), last.get("last_seen", 0.0)
    reasons = []
    if outcome == "running" and now - seen <= STALE_SECONDS and _may_be_alive(last):
        state = "running"
    else:
        if outcome == "running":
            reasons.append(f"no heartbeat for {_duration(now - seen)}: killed (SIGKILL, node lost, out of memory?)"
                           if now - seen > STALE_SECONDS else "its process is gone: killed (SIGKILL, out of memory?)")
        elif outcome and outcome != "done":
            reasons.append(str(outcome))
        error = _log_error(shard.log) if logged else None
        reasons += [error] if error else []
        state = "failed" if reasons and logged else "started" if attempts or chunks or logged else "waiting"
    return {**row, "state": state, "reason": "; ".join(reasons) or None, "chunks": len(chunks),
            "chunks_expected": sum(last.get("calls", {}).values()) or None, "attempts": len(attempts),
            "seconds": sum(max(a.get("last_seen", 0.0) - a.get("started", 0.0), 0.0) for a in attempts),
            "last_seen": seen or None, "host": last.get("host"), "slurm_job": last.get("slurm_job")}


def stage_status(config: Mapping[str, Any], plan_row: Mapping[str, Any],
                 now: float) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """One stage's figures, its jobs that are neither done nor waiting, and its done jobs of unknown time (a
    sidecar without `seconds`, or a bad one; a model whose metrics have no `seconds`, or bad ones: for those
    the plan's GPU-hours per job stand in)."""
    stage = plan_row["stage"]
    job = job_of(stage)
    shards = stage_shards(config, stage)
    # The jobs the workflow runs: the plan's but for the evaluated benchmarks left out for want of a file.
    jobs = len(shards)
    planned = plan_row["gpu_hours"] / plan_row["jobs"] if plan_row["jobs"] else 0.0
    counts = dict.fromkeys(STATES, 0)
    timed_hours = planned_hours = open_hours = 0.0
    timed = 0
    unfinished, untimed = [], []
    for shard in shards:
        found = inspect_shard(config, shard, now)
        counts[found["state"]] += 1
        # A generator's own model may take fewer GPUs than the plan row's (its largest). A training job takes the
        # plan row's GPUs (gpus_per_training_job x nodes); a local or CPU job none.
        gpus = job_gpus(config, job.rule, shard.generator) if job.family == ENGINE else plan_row["gpus_per_job"]
        if found["state"] != "done":
            open_hours += found.get("seconds", 0.0) * gpus / 3600
            unfinished += [found] if found["state"] != "waiting" else []
        elif found["seconds"] is None:  # unknown, not zero: it must not lower the measured GPU-hours per job
            untimed.append(found)
            if job.family == TRAINING:  # a model of an older version: the plan's figure stands in
                planned_hours += planned
        else:
            timed_hours += found["seconds"] * gpus / 3600
            timed += 1
    measured = timed_hours / timed if timed else None
    expected = [found.get("chunks_expected") for found in unfinished]
    by_plan = len(untimed) if job.family == TRAINING else 0
    return {
        "stage": stage, "rule": job.rule, "jobs": jobs, **counts,
        "chunks_done": sum(found.get("chunks", 0) for found in unfinished),
        "chunks_expected": sum(expected) if expected and None not in expected else None,
        "gpu_hours_spent": round(timed_hours + planned_hours + open_hours, 3),
        "spent_basis": "measured" if not by_plan else "planned" if not (timed or open_hours) else "mixed",
        "done_time_unknown": len(untimed) - by_plan, "done_time_planned": by_plan,
        "gpu_hours_per_job": {"planned": round(planned, 3),
                              "measured": None if measured is None else round(measured, 3)},
        "gpu_hours_to_go": round((planned if measured is None else measured) * (jobs - counts["done"]), 3),
        "to_go_basis": "planned" if measured is None else "measured",
        "planned_gpu_hours": plan_row["gpu_hours"],
    }, unfinished, untimed


def _has_run_logs(folder: Path) -> bool:
    """Whether `folder`/logs holds a trace of a run: every job of the workflow logs there."""
    try:
        return any(entry.name not in BEFORE_A_RUN for entry in os.scandir(folder / "logs"))
    except OSError:
        return False


def evaluation_on(config: Mapping[str, Any]) -> bool:
    """Whether status shows the evaluation's jobs: it is enabled (rule all runs it), or `snakemake evaluate`
    has begun it (its folder is there)."""
    return bool(config["evaluation"]["enabled"]) or (Path(config["results"]) / "evaluation").is_dir()


def _total(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    total = {key: sum(s[key] for s in rows)
             for key in ("jobs", *STATES, "chunks_done", "done_time_unknown", "done_time_planned")}
    total.update({key: round(sum(s[key] for s in rows), 3)
                  for key in ("gpu_hours_spent", "gpu_hours_to_go", "planned_gpu_hours")})
    return total


def run_status(config: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """The run's standing per planned stage (what `--json` prints), from the validated `config`.

    GPU-hours spent: per finished shard its sidecar's `seconds + interruptions.lost_seconds`, per trained model
    its training_metrics.json's (every try's), per unfinished job its attempts' time (an engine job's
    heartbeats; a training job's tries that ended without a model), times the job's GPUs. A model of an older
    version (metrics without `seconds`) counts as the plan's GPU-hours per job (basis "planned"; "mixed" where
    the stage has measured figures too).
    To go: the remaining jobs times the GPU-hours per job: measured, the mean of the stage's finished jobs
    (the plan's hours per job times measured / planned), where there are some; else the plan's. A finished
    shard whose sidecar has no `seconds` (an older version's) or is bad counts as of unknown time: spent is
    then a lower bound, and the measured figures come from the other shards.
    `stages` and `total` are the synthesis (the plan's stages); `evaluation` (sft, eval_answers and rule
    evaluate) where it is on (evaluation_on), apart, as in the plan, and `total_with_evaluation`.
    `run_found`: whether any job left a trace, or `results`/logs holds a log other than those made before a
    run (BEFORE_A_RUN)."""
    now = time.time() if now is None else now
    plan = build_plan(config)
    parts: dict[str, list[dict[str, Any]]] = {"stages": [], "evaluation": []}
    shards, untimed = [], []
    evaluation = [*plan["evaluation"], EVALUATE_ROW] if evaluation_on(config) else []
    for part, plan_row in [*(("stages", row) for row in plan["stages"]), *(("evaluation", row) for row in evaluation)]:
        row, unfinished, unknown = stage_status(config, plan_row, now)
        parts[part].append(row)
        shards += unfinished
        untimed += unknown
    total, with_evaluation = _total(parts["stages"]), _total(parts["stages"] + parts["evaluation"])
    models = [found for found in untimed if "metrics" in found]
    sidecars = [found for found in untimed if "sidecar" in found]
    return {"results": str(Path(config["results"]).resolve()), "now": now, "stale_after_seconds": STALE_SECONDS,
            "stages": parts["stages"], "total": total, "evaluation": parts["evaluation"],
            "total_with_evaluation": with_evaluation, "shards": shards,
            "run_found": with_evaluation["waiting"] < with_evaluation["jobs"] or _has_run_logs(Path(config["results"])),
            "bad_sidecars": [{key: found[key] for key in ("stage", "generator", "shard", "sidecar", "problem")}
                             for found in sidecars if "problem" in found],
            "sidecars_without_seconds": [found["sidecar"] for found in sidecars if "problem" not in found],
            "bad_training_metrics": [{key: found[key] for key in ("stage", "generator", "metrics", "problem")}
                                     for found in models if "problem" in found],
            "models_without_seconds": [found["metrics"] for found in models if "problem" not in found]}


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _stage_line(name: str, s: Mapping[str, Any]) -> str:
    chunks = f"{s['chunks_done']}" + (f"/{s['chunks_expected']}" if s.get("chunks_expected") else "")
    figures = s.get("gpu_hours_per_job", {})
    measured = "-" if figures.get("measured") is None else f"{figures['measured']:.3f}"
    per_job = f"{figures['planned']:.3f} / {measured}" if figures else ""
    at_least = ">=" if s.get("done_time_unknown") else ""  # finished shards of unknown time: a lower bound
    spent = f"{at_least}{s['gpu_hours_spent']:.3f} {BASIS.get(s.get('spent_basis'), '')}"  # a total: no basis
    to_go = f"{s['gpu_hours_to_go']:.3f} {BASIS.get(s.get('to_go_basis'), '')}"
    return (f"{name:<18} {s['done']:>5}/{s['jobs']:<5} {s['running']:>7} {s['failed']:>6} {s['started']:>7} "
            f"{chunks if s['chunks_done'] else '':>7} {spent:>13} {to_go:>13}  {per_job:>21}")


def _when(moment: float, now: float) -> str:
    return f"{_duration(max(now - moment, 0.0))} ago ({time.strftime('%Y-%m-%d %H:%M', time.localtime(moment))})"


def _training_line(s: Mapping[str, Any], now: float) -> str:
    """An unfinished training job: why it failed, or when its log was last written (it has no heartbeat); below,
    its last checkpoint and its failed tries. One with a log alone as an engine job's."""
    checkpoint, tries = s.get("checkpoint"), s.get("failed_tries", 0)
    details = []
    if checkpoint:
        of = checkpoint.get("max_steps")
        step = f"step {checkpoint['step']}" + (f" of {of} ({100 * checkpoint['step'] / of:.0f}%)"
                                               if isinstance(of, int) and of > 0 else "")
        saved = f", saved {_when(checkpoint['time'], now)}" if isinstance(checkpoint.get("time"), (int, float)) else ""
        details.append(f"last checkpoint: {step}{saved}" + (f" on {checkpoint['signal']}" if checkpoint.get("signal")
                                                            else ""))
    elif tries:
        details.append("last checkpoint: none, a retry starts from step 0")
    if tries:
        details.append(f"failed tries: {tries}, {_duration(s['lost_seconds'])} lost after their last checkpoint")
    if s.get("reason"):
        summary = s["reason"]
    elif details and s.get("log_written"):
        summary = f"its log last written {_duration(max(now - s['log_written'], 0.0))} ago"
    else:
        summary = "nothing on disk but its log" if s.get("log_written") else "no log"
    return "\n".join([f"  {s['stage']} {s['generator']}: {summary}", *(f"    {line}" for line in details)])


def _shard_line(s: Mapping[str, Any], now: float) -> str:
    if s.get("training"):
        return _training_line(s, now)
    parts = []
    if s.get("chunks") or s.get("attempts"):
        parts.append(f"{s['chunks']}" + (f" of {s['chunks_expected']}" if s.get("chunks_expected") else "") + " chunks")
    if s.get("attempts"):
        parts.append(f"attempt {s['attempts']} on {s['host']}"
                     + (f", Slurm job {s['slurm_job']}" if s.get("slurm_job") else ""))
    if s["state"] == "running":
        parts.append(f"last seen {_duration(now - s['last_seen'])} ago")
    if s.get("reason"):
        parts.append(s["reason"])
    job = s["stage"] if s.get("whole") else f"{s['stage']} {s['generator']}/{s['shard']}"
    return f"  {job}: {', '.join(parts) or 'nothing on disk but its log'}"


TITLES = {"running": "Running",
          "failed": "Failed (the log says why; the controller may still retry it)",
          "started": "Started (a log or chunks, no heartbeat, no error: starting, training, or killed before its "
                     "first heartbeat)"}


def render_status(status: Mapping[str, Any]) -> str:
    """The status as text: a line per stage (the evaluation's apart), then the running, failed and started jobs
    with their logs."""
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["now"]))
    lines = [f"Run status of {status['results']} at {at}", "",
             f"{'stage':<18} {'done/jobs':>11} {'running':>7} {'failed':>6} {'started':>7} {'chunks':>7} "
             f"{'GPU-h spent':>13} {'GPU-h to go':>13}  {'GPU-h/job plan / meas':>21}"]
    lines += [_stage_line(s["stage"], s) for s in status["stages"]]
    lines += [_stage_line("total", status["total"])]
    if status.get("evaluation"):
        lines += [_stage_line(s["stage"], s) for s in status["evaluation"]]
        lines += [_stage_line("total with eval.", status["total_with_evaluation"])]
    lines += [""] + textwrap.wrap(
              "meas: measured (sidecars' seconds and lost seconds, trained models' training_metrics.json seconds and "
              "lost seconds, the attempts of unfinished shards and the failed tries of unfinished training jobs, "
              "times GPUs); plan: the cost plan's figure (a stage with no finished job yet; a model of an older "
              "version, whose metrics have no seconds); mix: both. "
              "To go: remaining jobs x GPU-h per job. chunks: finished chunks of unfinished shards (/ all the chunks "
              f"of the engine calls the job has started). A running job not seen for {STALE_SECONDS:.0f} s counts "
              "as killed; a training job has no heartbeat: an unfinished one is started (its try in progress counts "
              "no time until it ends) or failed." + (" The evaluation (sft, eval_answers, evaluation: rule evaluate's "
              "scores) is apart, as in the plan." if status.get("evaluation") else ""), 110)
    models, bad_models = status.get("models_without_seconds", []), status.get("bad_training_metrics", [])
    if models or bad_models:
        kinds = [f"{len(models)} of an older version, without 'seconds', e.g. {models[0]}"] if models else []
        kinds += [f"{len(bad_models)} that could not be read, listed below"] if bad_models else []
        lines += [""] + textwrap.wrap(
            f"Trained models counted at the plan's GPU-h per job: {len(models) + len(bad_models)} (their "
            f"training_metrics.json: {'; '.join(kinds)}).", 110, break_long_words=False, break_on_hyphens=False)
    untimed, bad = status["sidecars_without_seconds"], status["bad_sidecars"]
    if untimed or bad:
        kinds = [f"{len(untimed)} of an older version, without 'seconds', e.g. {untimed[0]}"] if untimed else []
        kinds += [f"{len(bad)} bad, listed below"] if bad else []
        lines += [""] + textwrap.wrap(
            f"Finished shards of unknown time: {len(untimed) + len(bad)} (their sidecars: {'; '.join(kinds)}). "
            "Spent leaves them out, so it is a lower bound (>=); GPU-h per job and to go come from the stage's "
            "other finished shards.", 110, break_long_words=False, break_on_hyphens=False)
    for state, title in TITLES.items():
        found = [s for s in status["shards"] if s["state"] == state]
        if found:
            lines += ["", f"{title}:"]
        for s in found:
            lines += [_shard_line(s, status["now"]), f"    log: {s['log']}"]
    if bad:
        lines += [""] + textwrap.wrap(
            "Bad sidecars, skipped (each shard counts as done, of unknown time, but the jobs that read its sidecar "
            "will fail: delete the sidecar and its shard, the .parquet beside it, and run again: the workflow "
            "makes both anew):", 110)
    for s in bad:
        lines += [f"  {s['stage']} {s['generator']}/{s['shard']}: {s['problem']}", f"    sidecar: {s['sidecar']}"]
    if bad_models:
        lines += ["", "Training metrics that could not be read (the model counts as done, at the plan's GPU-h):"]
    for s in bad_models:
        lines += [f"  {s['stage']} {s['generator']}: {s['problem']}", f"    metrics: {s['metrics']}"]
    return "\n".join(lines) + "\n"


def render_plan(status: Mapping[str, Any]) -> str:
    """What a fresh run of the config would take, for a folder with no run: jobs and planned GPU-hours."""
    lines = [f"The plan of a fresh run into {status['results']} (nothing measured: no run is there):", "",
             f"{'stage':<18} {'jobs':>6} {'GPU-h planned':>14}"]
    rows = [*((s["stage"], s) for s in status["stages"]), ("total", status["total"])]
    if status.get("evaluation"):
        rows += [*((s["stage"], s) for s in status["evaluation"]),
                 ("total with eval.", status["total_with_evaluation"])]
    lines += [f"{name:<18} {s['jobs']:>6} {s['planned_gpu_hours']:>14.3f}" for name, s in rows]
    return "\n".join(lines) + "\n"


def _subfolders(folder: Path) -> list[Path]:
    """The folders in `folder`, but hidden ones (.git, .venv, .snakemake: no results folder, and large)."""
    try:
        return [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir() and entry.name[0] != "."]
    except OSError:
        return []


def _runs_near(results: Path) -> list[Path]:
    """The folders that hold a run's logs, up to two levels below `results` or, where it does not exist, below
    the nearest folder above it that does: a preset's folder (results/tiny), or the one a typo missed."""
    base = next(folder for folder in (results, *results.parents) if folder.is_dir())
    found, level = [], [base]
    for _ in range(2):
        level = [folder for parent in level for folder in _subfolders(parent)]
        found += [folder for folder in level if _has_run_logs(folder)]
        level = [folder for folder in level if folder not in found]  # a run's own folders hold no other run
    return sorted(found)


def _presets_of(folder: Path) -> list[Path]:
    """The checkout's presets (presets/*.yaml) whose `results` is `folder`."""
    found = []
    for preset in sorted(Path("presets").glob("*.yaml")):
        try:
            settings = load_config_file(preset)
        except ConfigError:  # a broken preset is no hint; the run that uses it reports it
            continue
        if "results" in settings and Path(str(settings["results"])).resolve() == folder.resolve():
            found.append(preset)
    return found


def no_run_message(results: Path, configfiles: Sequence[str]) -> str:
    """Why status found no run in `results` (the config's, relative to the current folder), and where one is."""
    why = ("the folder does not exist" if not results.exists() else "no job of the plan left a shard, sidecar, "
           "chunk folder or log there, and its logs/ holds no log of a run's job")
    setters = [path for path in configfiles if "results" in load_config_file(path)]
    source = f"set by {setters[-1]}, the last of the config files given that sets it" if setters else "the default"
    lines = [f"status: no run found in {results.resolve()}: {why}.",
             f"`results` is {str(results)!r} ({source}), read from {Path.cwd()}."]
    for folder in _runs_near(results)[:5]:
        presets = _presets_of(folder)
        lines.append(f"A run is in {folder}" + (f", the `results` of {presets[0]}" if presets else "") + ".")
    lines.append("Give status the config files the run was started with, in their order, from the checkout: "
                 "the demo's are config.yaml presets/tiny.yaml (what `make status` reads).")
    return "\n".join(textwrap.fill(line, 110, subsequent_indent="  ", initial_indent="" if i == 0 else "  ",
                                    break_long_words=False, break_on_hyphens=False) for i, line in enumerate(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scalequest.status", description=__doc__.split("\n\n")[0],
        epilog=f"Exit status: 0 the report (bad sidecars are listed in it); {EXIT_CONFIG} a config file is missing "
               f"or invalid; 2 bad arguments; {EXIT_NO_RUN} no run found in the results folder: the message (stderr) "
               "says why and where a run is, and the plan of a fresh run follows (stdout; with --json the status "
               "itself, with run_found false).")
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"],
                        help="config files, later ones over earlier ones (as snakemake --configfile)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)
    try:
        config = load_config_files(*args.configfile)
    except ConfigError as error:
        print(f"status: {error}", file=sys.stderr)
        return EXIT_CONFIG
    status = run_status(config)
    if not status["run_found"]:
        print(no_run_message(Path(config["results"]), args.configfile), file=sys.stderr)
    sys.stdout.write(json.dumps(status, indent=2) + "\n" if args.json
                     else render_status(status) if status["run_found"] else render_plan(status))
    return 0 if status["run_found"] else EXIT_NO_RUN


if __name__ == "__main__":
    sys.exit(main())
