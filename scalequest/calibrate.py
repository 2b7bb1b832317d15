"""Calibrating the cost plan from a finished run: throughput per job, keep rates and mean tokens
measured from the shards' stats sidecars, and the training stages' throughput per GPU from the trained
models' training_metrics.json (their `seconds`, scalequest/training/launcher.py), written as a `plan:`
config section to merge over the config (`snakemake plan --configfile results/calibration.yaml`)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .atomic import write_text_atomic
from .registry import PER_GPU, PER_JOB, STAGES, planned_stages
from .stats import read_stats
from .training.job import METRICS_FILE

# A training job's kind (training_metrics.json's `kind`) -> its stage in the plan.
TRAINING_STAGES = {"qft": "qft", "qpo": "qpo_train", "scorer": "difficulty_train", "sft": "sft"}
# Where the training rules save their models, under `results` (rules/common.smk: trained_model_dir, SCORER_DIR,
# sft_model_dir).
MODEL_FOLDERS = ("train/qft/*/model", "train/qpo/*/model", "train/difficulty/scorer", "evaluation/sft/*/*/model")
JOB_FILE = "training_job.json"  # beside the metrics: the job as the launcher ran it (its hyper-parameters)


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


def training_metrics_paths(results: str | Path) -> list[str]:
    """The training_metrics.json of every model the training rules saved under `results`."""
    found = (folder / METRICS_FILE for pattern in MODEL_FOLDERS for folder in Path(results).glob(pattern))
    return sorted(str(path) for path in found if path.is_file())


def _examples(metrics: Mapping[str, Any]) -> int:
    """A training job's examples in the plan's unit (questions or pairs), the held-out ones too: the plan
    counts every seed question (pair), and the job's time covers their loss before and after."""
    return sum(int(metrics.get(f"{part}_{unit}", 0)) for part in ("train", "held_out")
               for unit in ("questions", "pairs"))


def _training_figures(path: str) -> tuple[str, float, int]:
    """(stage, GPU-seconds, samples) of one trained model's metrics; ValueError saying why it cannot be
    measured."""
    try:
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))
        hyper = json.loads((Path(path).parent / JOB_FILE).read_text(encoding="utf-8"))["hyper"]
        stage = TRAINING_STAGES.get(metrics.get("kind"))
        seconds = metrics.get("seconds")
        if stage is None:
            raise ValueError(f"no training kind of the plan ({', '.join(TRAINING_STAGES)})")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise ValueError("no 'seconds' (a model of an older version)")
        if (hyper.get("max_steps") or -1) > 0:
            raise ValueError(f"trained for max_steps {hyper['max_steps']}, not whole epochs")
        samples = _examples(metrics) * hyper.get("epochs", 0)
        gpu_seconds = seconds * int(metrics.get("world_size") or 1)
    except (OSError, KeyError, TypeError, AttributeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"unreadable, or no {JOB_FILE} with its hyper-parameters beside it ({error})") from error
    if gpu_seconds <= 0 or samples <= 0:
        raise ValueError("no time or no examples to measure")
    return stage, gpu_seconds, samples


def measure_training(paths: Sequence[str]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per training stage the sums its throughput needs: samples (examples x epochs), GPU-seconds (`seconds`
    x world_size: the productive time of every try, the model's loading and saving included, as the engine
    stages' whole-job seconds) and models; and the metrics left out, each with why: a model of an older
    version (no `seconds`), one trained for `max_steps` (its samples are not examples x epochs), one whose
    job file or figures are missing."""
    sums: dict[str, dict[str, float]] = {}
    left_out = []
    for path in paths:
        try:
            stage, gpu_seconds, samples = _training_figures(path)
        except ValueError as error:
            left_out.append(f"{path}: {error}")
            continue
        total = sums.setdefault(stage, {"samples": 0, "gpu_seconds": 0.0, "models": 0})
        total["samples"] += samples
        total["gpu_seconds"] += gpu_seconds
        total["models"] += 1
    return sums, left_out


def calibration(stats_paths: Mapping[str, Sequence[str]], training_paths: Sequence[str] = ()) -> dict[str, Any]:
    """The `plan` figures measured from the sidecars and the trained models' metrics (`training_paths`);
    stages the run did not have are left out (the config's figures stand for them). Throughput is per job,
    on whatever GPUs its model took (the plan charges those GPUs), from whole-job seconds, model loading
    included; a training stage's is per GPU (its ranks, world_size), from its models' seconds."""
    sums = measure(stats_paths)
    plan: dict[str, dict[str, float]] = {PER_JOB: {}, PER_GPU: {}, "keep_rates": {}, "mean_tokens": {}}
    trained, _ = measure_training(training_paths)
    for stage in planned_stages(PER_GPU):
        measured = trained.get(stage.name)
        if measured:
            plan[PER_GPU][stage.name] = round(measured["samples"] * 3600 / measured["gpu_seconds"], 1)
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


def write_calibration(path: str, calibrated: Mapping[str, Any], source: str, left_out: Sequence[str] = ()) -> None:
    """The calibration as a config file, with a header saying where it came from and how to use it, and
    which trained models' metrics it left out and why."""
    header = (f"# Measured from the stats sidecars and the trained models' {METRICS_FILE} of {source} by "
              "`snakemake calibrate`.\n"
              "# The cost plan with these figures: snakemake plan --cores 1 --forcerun plan --configfile "
              f"{path}\n")
    if left_out:
        header += "# Trained models left out (a training stage with none measured keeps the config's throughput):\n"
        header += "".join(f"#   {line}\n" for line in left_out)
    write_text_atomic(path, header + yaml.safe_dump(dict(calibrated), sort_keys=False))


def calibrate_run(stats_paths: Mapping[str, Sequence[str]], out: str,
                  training_paths: Sequence[str] | None = None) -> None:
    """Rule calibrate's job: the calibration of the run whose sidecars are given, written to `out`
    (beside the run's other results); its trained models' metrics are `training_paths`, by default those
    found in the folder of `out` (the run's `results`)."""
    results = os.path.dirname(out)
    paths = training_metrics_paths(results) if training_paths is None else list(training_paths)
    write_calibration(out, calibration(stats_paths, paths), source=results, left_out=measure_training(paths)[1])
