"""The cost plan from the config alone."""
import copy
import time

import pytest
import yaml

from conftest import REPO, copy_workflow, run_snakemake
from scalequest.config import validate_config
from scalequest.plan import PAPER_TABLE, SYNTHESIS_STAGES, build_plan, render_plan


@pytest.fixture
def config():
    return validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))


DIFFICULTY_ROWS = {"difficulty_labels": (15, 120_000, 6.0), "difficulty_train": (1, 15_000, 2.0),
                   "difficulty": (400, 1_000_000, 2.8)}  # jobs, samples, GPU-hours


def test_full_scale_plan_reproduces_the_papers_table(config):
    plan = build_plan(config)
    for stage in plan["stages"]:
        if stage["stage"] in DIFFICULTY_ROWS:  # the paper's table has no row of their own for these
            assert stage["paper"] is None and stage["paper_note"]
            assert (stage["jobs"], stage["samples"], stage["gpu_hours"]) == DIFFICULTY_ROWS[stage["stage"]]
            continue
        assert stage["samples"] == PAPER_TABLE[stage["stage"]]["samples"]
        assert stage["gpu_hours"] == pytest.approx(PAPER_TABLE[stage["stage"]]["gpu_hours"], abs=0.1)
        assert stage["usd"] == pytest.approx(PAPER_TABLE[stage["stage"]]["usd"], abs=0.2)
        assert stage["jobs"] == (400 if stage["stage"] in SYNTHESIS_STAGES else 2)
    assert [s["stage"] for s in plan["stages"]] == ["qft", "qpo_sample", "qpo_rewrite", "qpo_train",
                                                    "difficulty_labels", "difficulty_train", "generate", "filter",
                                                    "difficulty", "respond", "reward"]
    assert plan["total"]["paper_gpu_hours"] == 522.9 and plan["total"]["paper_usd"] == pytest.approx(680.8, abs=0.2)
    assert plan["total"]["gpu_hours"] == pytest.approx(522.9 + 6.0 + 2.0 + 2.8, abs=0.15)
    assert plan["expected_pairs"] == 1_000_000
    assert "| difficulty | 400 | 1,000,000 |" in render_plan(plan)


def test_plan_without_difficulty_is_the_papers_table(config):
    config["difficulty"]["enabled"] = False
    plan = build_plan(config)
    assert [s["stage"] for s in plan["stages"]] == list(PAPER_TABLE)
    assert plan["total"]["gpu_hours"] == 522.9 and plan["total"]["usd"] == pytest.approx(680.8, abs=0.2)


def test_plan_leaves_out_training_that_is_switched_off(config):
    for generator in config["generators"].values():
        generator["training"] = "none"
    assert [s["stage"] for s in build_plan(config)["stages"]] == ["difficulty_labels", "difficulty_train",
                                                                  *SYNTHESIS_STAGES]


def test_plan_follows_the_config(config):
    smaller = copy.deepcopy(config)
    for generator in smaller["generators"].values():
        generator["questions"] = 100_000
    smaller["respond"]["n"] = 2
    smaller["plan"]["samples_per_gpu_hour"]["respond"] *= 2
    plan = {s["stage"]: s for s in build_plan(smaller)["stages"]}
    assert plan["generate"]["jobs"] == 40 and plan["generate"]["gpu_hours"] == pytest.approx(3.8, abs=0.1)
    assert plan["respond"]["samples"] == 200_000
    assert plan["respond"]["gpu_hours"] == pytest.approx(251.0 * 0.04 / 2, abs=0.1)
    assert "| respond | 40 | 200,000 |" in render_plan(build_plan(smaller))


def test_plan_target_writes_and_prints_without_models(tmp_path):
    workdir = copy_workflow(tmp_path / "plan")
    started = time.perf_counter()
    result = run_snakemake(workdir, "plan", "--cores", "1", timeout=120)
    assert time.perf_counter() - started < 30
    table = (workdir / "results" / "plan.md").read_text()
    assert "| reward | 400 | 5,000,000 |" in table
    assert "| total | 2,024 |" in result.stdout
