"""The cost plan from the config alone."""
import copy

import pytest
import yaml

from conftest import REPO, copy_workflow, run_snakemake
from scalequest.config import validate_config
from scalequest.gpu_jobs import job_gpus
from scalequest.plan import PAPER_TABLE, SYNTHESIS_STAGES, build_plan, render_plan
from scalequest.registry import ENGINE, TRAINING, rules_of


@pytest.fixture
def config():
    return validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))


DIFFICULTY_ROWS = {"difficulty_labels": (15, 120_000, 6.0), "difficulty_train": (1, 15_000, 2.0),
                   "difficulty": (200, 1_000_000, 2.8)}  # jobs, samples, GPU-hours


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
        assert stage["jobs"] == (200 if stage["stage"] in SYNTHESIS_STAGES else 2)
    assert [s["stage"] for s in plan["stages"]] == ["qft", "qpo_sample", "qpo_rewrite", "qpo_train",
                                                    "difficulty_labels", "difficulty_train", "generate", "filter",
                                                    "difficulty", "respond", "reward"]
    assert plan["total"]["paper_gpu_hours"] == 522.9 and plan["total"]["paper_usd"] == pytest.approx(680.8, abs=0.2)
    assert plan["total"]["gpu_hours"] == pytest.approx(522.9 + 6.0 + 2.0 + 2.8, abs=0.15)
    assert plan["expected_pairs"] == 1_000_000
    assert "| difficulty | 200 | 1,000,000 |" in render_plan(plan)


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
    smaller["plan"]["samples_per_job_hour"]["respond"] *= 2
    plan = {s["stage"]: s for s in build_plan(smaller)["stages"]}
    assert plan["generate"]["jobs"] == 20 and plan["generate"]["gpu_hours"] == pytest.approx(3.8, abs=0.1)
    assert plan["respond"]["samples"] == 200_000
    assert plan["respond"]["gpu_hours"] == pytest.approx(251.0 * 0.04 / 2, abs=0.1)
    assert "| respond | 20 | 200,000 |" in render_plan(build_plan(smaller))


def test_plan_target_writes_and_prints_without_models(tmp_path):
    """(Its speed, under 30 s: benchmarks/dry_run.py.)"""
    workdir = copy_workflow(tmp_path / "plan")
    result = run_snakemake(workdir, "plan", "--cores", "1", timeout=120)
    table = (workdir / "results" / "plan.md").read_text()
    assert "| reward | 200 | 5,000,000 |" in table
    assert "| total | 1,024 |" in result.stdout


def profile_resources(env: dict[str, str] | None = None) -> dict:
    """profiles/slurm as Snakemake reads it (YTE), with the cluster settings left at their defaults."""
    import os
    from unittest import mock

    import yte

    clean = {key: value for key, value in os.environ.items() if not key.startswith("SCALEQUEST_SLURM_")}
    with mock.patch.dict(os.environ, {**clean, **(env or {})}, clear=True), \
            open(REPO / "profiles" / "slurm" / "config.v8+.yaml") as profile:
        return yte.process_yaml(profile, require_use_yte=True)


def first_attempt_minutes(expression: str | int) -> float:
    return eval(str(expression), {"__builtins__": {}}, {"min": min, "attempt": 1})  # the profile's own expression


def test_slurm_profile_asks_for_what_the_plan_assumes(config):
    """GPUs per job as the plan counts them (the rules' own `gpu`, from scalequest/gpu_jobs.py), and
    first-attempt time limits with room over the plan's hours per job (model loading is not in the
    plan's throughput)."""
    resources = profile_resources()["set-resources"]
    assert set(rules_of(ENGINE)) | set(rules_of(TRAINING)) <= set(resources)
    plan = build_plan(config)
    assert [stage["stage"] for stage in plan["evaluation"]] == ["sft", "eval_answers"]
    for stage in plan["stages"] + plan["evaluation"]:
        if stage["stage"] == "qpo_rewrite":  # an API optimizer: its time is the endpoint's
            continue
        asked = resources[stage["stage"]]
        nodes = config["evaluation"]["sft"]["nodes"] if stage["stage"] == "sft" else 1  # gres is per node
        gpus = int(asked["gres"].rsplit(":", 1)[1]) * nodes if "gres" in asked else job_gpus(config, stage["stage"])
        assert gpus == stage["gpus_per_job"], stage["stage"]
        assert first_attempt_minutes(asked["runtime"]) >= 1.5 * stage["hours_per_job"] * 60, stage["stage"]
        if "gres" not in asked:  # CPUs and memory per GPU, so that Slurm scales them with the GPUs
            assert asked["cpus_per_gpu"] == 8 and first_attempt_minutes(asked["mem_mb_per_cpu"]) == 8000


def test_a_model_on_four_gpus_makes_four_gpu_jobs_in_the_plan(config):
    """The solver on 4 GPUs (tensor parallel): its stages' jobs take 4 GPUs; at the same throughput
    per job, their wall hours stay and their GPU-hours are 4x."""
    before = {s["stage"]: s for s in build_plan(config)["stages"]}
    config["models"]["qwen2-math-7b-instruct"]["vllm_args"]["tensor_parallel_size"] = 4
    after = {s["stage"]: s for s in build_plan(config)["stages"]}
    for stage in ("filter", "respond", "difficulty_labels"):
        assert (before[stage]["gpus_per_job"], after[stage]["gpus_per_job"]) == (1, 4)
        assert after[stage]["gpu_hours"] == pytest.approx(4 * before[stage]["gpu_hours"], abs=0.2)
        assert after[stage]["hours_per_job"] == before[stage]["hours_per_job"]
    # generate: the qwen2-math generator (trained from the solver) on 4 GPUs, deepseek-math on 1
    assert after["generate"]["gpus_per_job"] == 4
    assert after["generate"]["gpu_hours"] == pytest.approx((4 + 1) / 2 * before["generate"]["gpu_hours"], abs=0.1)
    for stage in ("reward", "difficulty"):
        assert after[stage] == before[stage]


def test_slurm_profile_settings_come_from_one_place():
    default = profile_resources()
    assert (default["default-resources"]["slurm_partition"] == "gpu"
            and "slurm_account" not in default["default-resources"])
    custom = profile_resources({"SCALEQUEST_SLURM_PARTITION": "a100", "SCALEQUEST_SLURM_CPU_PARTITION": "cpu",
                                "SCALEQUEST_SLURM_ACCOUNT": "lab", "SCALEQUEST_SLURM_GPU_MODEL": "a100",
                                "SCALEQUEST_SLURM_GPUS_PER_NODE": "4"})
    assert (custom["default-resources"]["slurm_partition"] == "cpu"
            and custom["default-resources"]["slurm_account"] == "lab")
    assert custom["set-resources"]["generate"]["slurm_partition"] == "a100"
    assert custom["set-resources"]["generate"]["gpu_model"] == "a100"
    assert custom["set-resources"]["qft"]["gres"] == "gpu:a100:4"


def test_plan_prices_the_evaluation_apart_from_the_papers_table(config):
    """SFT: each base model on each dataset (the release's expected pairs, another's `pairs`) x its
    epochs at samples_per_gpu_hour.sft on 2 nodes; answers: every evaluated model's benchmark items at
    respond's throughput. The synthesis total stays the paper's table's."""
    plan = build_plan(config)
    sft, answers = plan["evaluation"]
    assert (sft["stage"], sft["jobs"], sft["samples"], sft["gpus_per_job"]) == ("sft", 4, 12_000_000, 16)
    assert sft["gpu_hours"] == pytest.approx(12_000_000 / 6250) and sft["hours_per_job"] == 30.0
    items = 1319 + 5000 + 500 + 2818 + 675
    assert (answers["jobs"], answers["samples"]) == (5 * 6, 5 * items)  # 4 SFT'd models + the solver; math in 2
    assert answers["gpu_hours"] == pytest.approx(5 * items / 19920, abs=0.05)
    assert plan["total_with_evaluation"]["gpu_hours"] == pytest.approx(
        plan["total"]["gpu_hours"] + sft["gpu_hours"] + answers["gpu_hours"], abs=0.15)
    config["evaluation"]["datasets"]["metamath"] = {"hub": "meta-math/MetaMathQA", "pairs": 395_000}
    config["evaluation"]["sft"]["models"] = {"mistral-7b": {"epochs": 1}}
    sft = build_plan(config)["evaluation"][0]
    assert (sft["jobs"], sft["samples"]) == (8, (3 * 3 + 1) * 1_395_000)
    table = render_plan(build_plan(config))
    assert "| sft | 8 |" in table and "| total with evaluation |" in table
