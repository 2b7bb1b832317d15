"""Calibrating the cost plan from a finished run: throughput per GPU, keep rates and mean tokens
measured from the shards' stats sidecars, written as a `plan:` config section to merge over the
config (`snakemake plan --configfile results/calibration.yaml`)."""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import yaml

from .atomic import write_text_atomic
from .registry import PER_JOB, STAGES, planned_stages
from .stats import read_stats


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
    plan: dict[str, dict[str, float]] = {PER_JOB: {}, "keep_rates": {}, "mean_tokens": {}}
    for stage in planned_stages(PER_JOB):
        measured = sums.get(stage.name, {}).get(stage.plan.unit)
        if measured and measured["seconds"] > 0 and measured["in"]:
            plan[PER_JOB][stage.name] = round(measured["in"] * 3600 / measured["seconds"], 1)
        if measured and measured["in"] and measured["tokens"] and stage.plan.tokens:
            plan["mean_tokens"][stage.name] = max(1, round(measured["tokens"] / measured["in"]))
    for stage in STAGES:
        measured = sums.get(stage.name, {}).get(stage.keep_rate)
        if measured and measured["in"]:
            plan["keep_rates"][stage.name] = round(measured["kept"] / measured["in"], 4)
    return {"plan": {key: value for key, value in plan.items() if value}}


def write_calibration(path: str, calibrated: Mapping[str, Any], source: str) -> None:
    """The calibration as a config file, with a header saying where it came from and how to use it."""
    header = (f"# Measured from the stats sidecars of {source} by `snakemake calibrate`.\n"
              "# The cost plan with these figures: snakemake plan --cores 1 --forcerun plan --configfile "
              f"{path}\n")
    write_text_atomic(path, header + yaml.safe_dump(dict(calibrated), sort_keys=False))


def calibrate_run(stats_paths: Mapping[str, Sequence[str]], out: str) -> None:
    """Rule calibrate's job: the calibration of the run whose sidecars are given, written to `out`
    (beside the run's other results)."""
    write_calibration(out, calibration(stats_paths), source=os.path.dirname(out))
