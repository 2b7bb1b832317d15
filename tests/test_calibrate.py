"""The calibration's training throughput, in process on hand-made files: the trained models'
training_metrics.json (`seconds`, world_size, examples) and their training_job.json (epochs), the older
models without `seconds` left out and named; the calibrated file read back by the plan. (The calibration of
a whole run, sidecars included, is tests/test_workflow.py's test_calibration_measures_the_plan_from_the_run.)"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from scalequest.calibrate import calibrate_run, calibration, measure_training, training_metrics_paths
from scalequest.config import load_config_files
from scalequest.plan import build_plan
from scalequest.registry import PER_GPU, PER_JOB


def trained(results: Path, folder: str, kind: str, *, epochs: int = 1, max_steps: int = -1, job: bool = True,
            **metrics) -> str:
    """A trained model's folder under `results` with its metrics and (`job`) its training_job.json."""
    model = results / folder
    model.mkdir(parents=True)
    (model / "training_metrics.json").write_text(json.dumps({"kind": kind, "world_size": 1, **metrics}))
    if job:
        (model / "training_job.json").write_text(json.dumps({"kind": kind, "hyper": {"epochs": epochs,
                                                                                     "max_steps": max_steps}}))
    return str(model / "training_metrics.json")


def a_run(results: Path) -> dict[str, str]:
    """Two QFT models on 4 GPUs each, a QPO model on 2, and models that cannot be measured."""
    return {
        "qft_a": trained(results, "train/qft/qwen2-math/model", "qft", epochs=2, seconds=360.0, world_size=4,
                         interruptions={"attempts": 2, "lost_seconds": 90.0}, train_questions=950,
                         held_out_questions=50),
        "qft_b": trained(results, "train/qft/deepseek-math/model", "qft", epochs=2, seconds=540.0, world_size=4,
                         interruptions={"attempts": 1, "lost_seconds": 0.0}, train_questions=950,
                         held_out_questions=50),
        "qpo": trained(results, "train/qpo/qwen2-math/model", "qpo", epochs=1, seconds=720.0, world_size=2,
                       train_pairs=380, held_out_pairs=20),
        "older": trained(results, "train/difficulty/scorer", "scorer", train_questions=90, held_out_questions=10),
        "capped": trained(results, "evaluation/sft/tiny-lm/scalequest/model", "sft", max_steps=5, seconds=10.0,
                          train_pairs=100),
        "no_job": trained(results, "train/qpo/deepseek-math/model", "qpo", job=False, seconds=10.0, train_pairs=1),
    }


def test_training_throughput_is_measured_from_the_models_seconds(tmp_path):
    results = tmp_path / "results"
    paths = a_run(results)
    assert training_metrics_paths(results) == sorted(paths.values())
    sums, left_out = measure_training(training_metrics_paths(results))
    # Examples (held-out ones too, as the plan counts them) x epochs, over `seconds` (not the lost ones) x ranks.
    assert sums == {"qft": {"samples": 4000, "gpu_seconds": (360.0 + 540.0) * 4, "models": 2},
                    "qpo_train": {"samples": 400, "gpu_seconds": 720.0 * 2, "models": 1}}
    assert [line.split(": ", 1)[0] for line in left_out] == [paths["capped"], paths["older"], paths["no_job"]]
    why = dict(line.split(": ", 1) for line in left_out)
    assert why[paths["older"]] == "no 'seconds' (a model of an older version)"
    assert why[paths["capped"]] == "trained for max_steps 5, not whole epochs"
    assert why[paths["no_job"]].startswith("unreadable, or no training_job.json")

    plan = calibration({}, training_metrics_paths(results))["plan"]
    assert plan == {PER_GPU: {"qft": 4000.0, "qpo_train": 1000.0}}  # 4000 x 3600 / 3600; 400 x 3600 / 1440


def test_calibration_without_measured_models_keeps_the_config_figures(tmp_path):
    """Only older models (no `seconds`): no training throughput, as before (the config's stands)."""
    results = tmp_path / "results"
    trained(results, "train/qft/qwen2-math/model", "qft", train_questions=10)
    assert calibration({}, training_metrics_paths(results)) == {"plan": {}}
    assert PER_GPU not in calibration({})["plan"]


@pytest.mark.parametrize("content", ["{", "[]", '{"kind": "qft", "seconds": "soon"}',
                                     '{"kind": "qft", "seconds": 5, "train_questions": "many"}'])
def test_bad_training_metrics_are_left_out_with_why(tmp_path, content):
    path = Path(trained(tmp_path, "train/qft/g/model", "qft", seconds=1.0, train_questions=1))
    path.write_text(content)
    sums, [line] = measure_training([str(path)])
    assert sums == {} and line.startswith(f"{path}: ")


def test_the_calibrated_file_is_what_the_plan_reads(tmp_path):
    """calibrate_run (rule calibrate's job) finds the run's models beside its output, writes their throughput
    with the sidecars' figures and a header naming what it left out; the plan over it charges the measured
    GPU-hours per sample."""
    results = tmp_path / "results"
    paths = a_run(results)
    out = results / "calibration.yaml"
    calibrate_run({}, str(out))
    text = out.read_text()
    assert text.startswith(f"# Measured from the stats sidecars and the trained models' training_metrics.json of "
                           f"{results} by `snakemake calibrate`.\n")
    assert f"#   {paths['older']}: no 'seconds' (a model of an older version)\n" in text
    calibrated = yaml.safe_load(text)["plan"]
    assert calibrated == {PER_GPU: {"qft": 4000.0, "qpo_train": 1000.0}} and PER_JOB not in calibrated

    config = load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml", out)
    assert config["plan"][PER_GPU]["qft"] == 4000.0 and config["plan"][PER_GPU]["sft"] != 4000.0
    qft = next(row for row in build_plan(config)["stages"] if row["stage"] == "qft")
    assert qft["gpu_hours"] == round(qft["samples"] / 4000.0, 1)
