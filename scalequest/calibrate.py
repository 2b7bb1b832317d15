"""Calibrating the cost plan from a finished run: throughput per GPU, keep rates and mean tokens
measured from the shards' stats sidecars, written as a `plan:` config section to merge over the
config (`snakemake plan --configfile results/calibration.yaml`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

from .atomic import write_text_atomic
from .stats import read_stats

# The plan's samples per engine stage (scalequest/gpu_jobs.py), as the sidecars count them: (funnel, what is counted).
MEASURED_SAMPLES = {
    "generate": ("questions", "prompts sampled"),
    "filter": ("questions", "questions in"),
    "difficulty_labels": ("responses", "solver answers"),
    "difficulty": ("questions", "questions scored"),
    "respond": ("responses", "responses sampled"),
    "reward": ("responses", "responses scored"),
}
MEASURED_KEEP_RATES = {"filter": "questions", "sample": "questions", "respond": "responses"}
MEASURED_TOKENS = ("generate", "filter", "difficulty_labels", "respond")  # stages that count generated tokens


def measure(stats_paths: Mapping[str, Sequence[str]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per stage the sums the plan needs: samples, seconds, kept, generated tokens, shards."""
    sums: dict[str, dict[str, dict[str, float]]] = {}
    for stage, paths in stats_paths.items():
        for path in paths:
            payload = read_stats(path)
            for unit in ("questions", "responses"):
                if unit in payload:
                    total = sums.setdefault(stage, {}).setdefault(unit, {"in": 0, "kept": 0, "seconds": 0.0,
                                                                         "tokens": 0, "shards": 0})
                    total["in"] += payload[unit].total
                    total["kept"] += payload[unit].kept
                    total["seconds"] += payload["seconds"]
                    total["tokens"] += payload.get("counters", {}).get("generated_tokens", 0)
                    total["shards"] += 1
    return sums


def calibration(stats_paths: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The `plan` figures measured from the sidecars; stages the run did not have are left out
    (the config's figures stand for them). Throughput is per job, on whatever GPUs its model took
    (the plan charges those GPUs), from whole-job seconds, model loading included."""
    sums = measure(stats_paths)
    plan: dict[str, dict[str, float]] = {"samples_per_job_hour": {}, "keep_rates": {}, "mean_tokens": {}}
    for stage, (unit, _) in MEASURED_SAMPLES.items():
        measured = sums.get(stage, {}).get(unit)
        if measured and measured["seconds"] > 0 and measured["in"]:
            plan["samples_per_job_hour"][stage] = round(measured["in"] * 3600 / measured["seconds"], 1)
    for stage, unit in MEASURED_KEEP_RATES.items():
        measured = sums.get(stage, {}).get(unit)
        if measured and measured["in"]:
            plan["keep_rates"][stage] = round(measured["kept"] / measured["in"], 4)
    for stage in MEASURED_TOKENS:
        measured = sums.get(stage, {}).get(MEASURED_SAMPLES[stage][0])
        if measured and measured["in"] and measured["tokens"]:
            plan["mean_tokens"][stage] = max(1, round(measured["tokens"] / measured["in"]))
    return {"plan": {key: value for key, value in plan.items() if value}}


def write_calibration(path: str, calibrated: Mapping[str, Any], source: str) -> None:
    """The calibration as a config file, with a header saying where it came from and how to use it."""
    header = (f"# Measured from the stats sidecars of {source} by `snakemake calibrate`.\n"
              "# The cost plan with these figures: snakemake plan --cores 1 --forcerun plan --configfile "
              f"{path}\n")
    write_text_atomic(path, header + yaml.safe_dump(dict(calibrated), sort_keys=False))
