"""Where a long run stands, from its files alone: per stage the shards done, the chunks of unfinished ones,
the GPU-hours spent and still to go, and the shards that failed with their logs. It reads the config, the
sidecars, the chunk folders (scalequest/chunks.py) and the logs; it needs neither Snakemake nor Slurm, writes
nothing, and is safe to run beside the controller.

    python -m scalequest.status --configfile config.yaml my.yaml [--json]

`results` is read relative to the current folder, as the workflow does (run it from the checkout)."""
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
from typing import Any, Mapping

from .chunks import CHUNK_FILE, HEARTBEAT_SECONDS, chunks_dir, read_attempts
from .config import ConfigError, load_config_files, trained_generators
from .gpu_jobs import job_gpus
from .plan import build_plan
from .registry import ENGINE, job_of
from .shards import shard_ids
from .stats import StatsError, read_stats, stats_path

STALE_SECONDS = 3 * HEARTBEAT_SECONDS  # a "running" attempt not seen for this long was killed (SIGKILL, node loss)
TRACEBACK = "Traceback (most recent call last):"
ATTEMPT_HEADER = "\n== rule "  # joblog.where_it_runs: each attempt appends one to the log
LOG_TAIL_BYTES = 64 * 1024  # a traceback fits; the logs of long jobs (progress bars) do not need reading whole
STATES = ("done", "running", "failed", "started", "waiting")
# started: a log or chunks on disk, but no heartbeat, no bad outcome and no traceback: a job starting, a
# training job (no heartbeat), or one killed before its first heartbeat.


@dataclass(frozen=True)
class Shard:
    """One job's output as the rules name it: a shard (its sidecar beside it) or a trained model's folder."""

    stage: str
    generator: str
    shard: str
    output: Path
    log: Path
    training: bool = False


def stage_shards(config: Mapping[str, Any], stage: str) -> list[Shard]:
    """Every job of a planned stage, with the paths the rule files give it (rules/common.smk, rules/qpo.smk,
    rules/difficulty.smk)."""
    results = Path(config["results"])
    logs = results / "logs" / job_of(stage).rule
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


def _finished(row: dict[str, Any], sidecar: Path) -> dict[str, Any]:
    stats = read_stats(sidecar)
    lost = (stats.get("interruptions") or {}).get("lost_seconds", 0.0)
    return {**row, "state": "done", "seconds": stats["seconds"] + lost}


def inspect_shard(config: Mapping[str, Any], shard: Shard, now: float) -> dict[str, Any]:
    """A job's state, its wall seconds so far (not yet times its GPUs), and what it left on disk."""
    row: dict[str, Any] = {"stage": shard.stage, "generator": shard.generator, "shard": shard.shard,
                           "log": str(shard.log)}
    logged = shard.log.exists()
    if shard.training:
        if shard.output.exists():  # written whole at the end (atomic_dir)
            return {**row, "state": "done"}
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
                 now: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One stage's figures, and its jobs that are neither done nor waiting."""
    stage, jobs = plan_row["stage"], plan_row["jobs"]
    job = job_of(stage)
    training = job.family != ENGINE
    planned = plan_row["gpu_hours"] / jobs if jobs else 0.0
    counts = dict.fromkeys(STATES, 0)
    done_hours = open_hours = 0.0
    unfinished = []
    for shard in stage_shards(config, stage):
        found = inspect_shard(config, shard, now)
        counts[found["state"]] += 1
        # A generator's own model may take fewer GPUs than the plan row's (its largest).
        gpus = plan_row["gpus_per_job"] if training else job_gpus(config, job.rule, shard.generator)
        hours = found.get("seconds", 0.0) * gpus / 3600
        if found["state"] == "done":
            done_hours += planned if training else hours
        else:
            open_hours += hours
            unfinished += [found] if found["state"] != "waiting" else []
    measured = done_hours / counts["done"] if counts["done"] and not training else None
    expected = [found.get("chunks_expected") for found in unfinished]
    return {
        "stage": stage, "rule": job.rule, "jobs": jobs, **counts,
        "chunks_done": sum(found.get("chunks", 0) for found in unfinished),
        "chunks_expected": sum(expected) if expected and None not in expected else None,
        "gpu_hours_spent": round(done_hours + open_hours, 3), "spent_basis": "planned" if training else "measured",
        "gpu_hours_per_job": {"planned": round(planned, 3),
                              "measured": None if measured is None else round(measured, 3)},
        "gpu_hours_to_go": round((planned if measured is None else measured) * (jobs - counts["done"]), 3),
        "to_go_basis": "planned" if measured is None else "measured",
        "planned_gpu_hours": plan_row["gpu_hours"],
    }, unfinished


def run_status(config: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """The run's standing per planned stage (what `--json` prints), from the validated `config`.

    GPU-hours spent: per finished shard its sidecar's `seconds + interruptions.lost_seconds`, per unfinished
    one its attempts' time, times the job's GPUs; training jobs record no time, so theirs are the plan's.
    To go: the remaining jobs times the GPU-hours per job: measured, the mean of the stage's finished shards
    (the plan's hours per job times measured / planned), where there are some; else the plan's."""
    now = time.time() if now is None else now
    stages, shards = [], []
    for plan_row in build_plan(config)["stages"]:
        row, unfinished = stage_status(config, plan_row, now)
        stages.append(row)
        shards += unfinished
    total = {key: sum(s[key] for s in stages) for key in ("jobs", *STATES, "chunks_done")}
    total.update({key: round(sum(s[key] for s in stages), 3)
                  for key in ("gpu_hours_spent", "gpu_hours_to_go", "planned_gpu_hours")})
    return {"results": str(Path(config["results"]).resolve()), "now": now, "stale_after_seconds": STALE_SECONDS,
            "stages": stages, "total": total, "shards": shards}


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
    spent = f"{s['gpu_hours_spent']:.3f} {s.get('spent_basis', '')[:4]}"  # the total mixes both: no basis
    to_go = f"{s['gpu_hours_to_go']:.3f} {s.get('to_go_basis', '')[:4]}"
    return (f"{name:<18} {s['done']:>5}/{s['jobs']:<5} {s['running']:>7} {s['failed']:>6} {s['started']:>7} "
            f"{chunks if s['chunks_done'] else '':>7} {spent:>13} {to_go:>13}  {per_job:>21}")


def _shard_line(s: Mapping[str, Any], now: float) -> str:
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
    return f"  {s['stage']} {s['generator']}/{s['shard']}: {', '.join(parts) or 'nothing on disk but its log'}"


TITLES = {"running": "Running",
          "failed": "Failed (the log says why; the controller may still retry it)",
          "started": "Started (a log or chunks, no heartbeat, no error: starting, training, or killed before its "
                     "first heartbeat)"}


def render_status(status: Mapping[str, Any]) -> str:
    """The status as text: a line per stage, then the running, failed and started jobs with their logs."""
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["now"]))
    lines = [f"Run status of {status['results']} at {at}", "",
             f"{'stage':<18} {'done/jobs':>11} {'running':>7} {'failed':>6} {'started':>7} {'chunks':>7} "
             f"{'GPU-h spent':>13} {'GPU-h to go':>13}  {'GPU-h/job plan / meas':>21}"]
    lines += [_stage_line(s["stage"], s) for s in status["stages"]]
    lines += [_stage_line("total", status["total"]), ""] + textwrap.wrap(
              "meas: measured (sidecars' seconds and lost seconds, and the attempts of unfinished shards, times GPUs); "
              "plan: the cost plan's figure (training jobs record no time; a stage with no finished shard yet). "
              "To go: remaining jobs x GPU-h per job. chunks: finished chunks of unfinished shards (/ all the chunks "
              f"of the engine calls the job has started). A running job not seen for {STALE_SECONDS:.0f} s counts "
              "as killed.", 110)
    for state, title in TITLES.items():
        found = [s for s in status["shards"] if s["state"] == state]
        if found:
            lines += ["", f"{title}:"]
        for s in found:
            lines += [_shard_line(s, status["now"]), f"    log: {s['log']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scalequest.status", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"],
                        help="config files, later ones over earlier ones (as snakemake --configfile)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)
    try:
        status = run_status(load_config_files(*args.configfile))
    except (ConfigError, StatsError) as error:
        print(f"status: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(status, indent=2) + "\n" if args.json else render_status(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
