"""The stage registry (scalequest/registry.py) against what reads it: the record schemas, the config
schema's plan figures, the workflow's rules, and the check at workflow start."""
import re
import shutil

import pytest

from conftest import REPO, copy_workflow, run_snakemake
from scalequest import records
from scalequest.config import load_schema
from scalequest.registry import (
    ENGINE,
    GPU_FAMILIES,
    JOBS,
    PER_GPU,
    PER_JOB,
    STAGES,
    SUPPORT_RULES,
    chain_stages,
    chunked_stages,
    planned_stages,
    record_schema,
    rules_of,
    undeclared_rules,
)


def test_each_stage_names_its_own_record_schema():
    for stage in STAGES:
        if stage.schema and stage.name != "qpo_sample":  # QPO's samples are generated questions
            assert record_schema(stage.name).stage == stage.name
    claimed = {record_schema(stage.name).stage for stage in STAGES if stage.schema}
    layouts = {value.stage for value in vars(records).values() if isinstance(value, records.StageSchema)}
    assert layouts <= claimed


def test_the_config_schema_has_a_plan_figure_for_each_planned_stage():
    plan = load_schema()["properties"]["plan"]["properties"]
    assert set(plan[PER_JOB]["properties"]) == {stage.name for stage in planned_stages(PER_JOB)}
    assert set(plan[PER_GPU]["properties"]) == {stage.name for stage in planned_stages(PER_GPU)}
    assert set(plan["mean_tokens"]["properties"]) == {stage.name for stage in planned_stages()}
    assert {stage.name for stage in STAGES if stage.keep_rate} <= set(plan["keep_rates"]["properties"])


def test_every_gpu_engine_stage_checkpoints_in_chunks():
    """A stage an engine job writes declares its chunk unit (scalequest/chunks.py refuses a stage that does not)."""
    assert {s.name for s in chunked_stages()} == {s.name for s in STAGES if s.job and s.job.family == ENGINE}


def test_the_chain_is_the_data_flow():
    assert chain_stages(True) == ("generate", "filter", "difficulty", "sample", "respond", "reward", "best")
    assert chain_stages(False) == ("generate", "filter", "respond", "reward", "best")
    for stage in STAGES:
        assert bool(stage.job) != bool(stage.with_job), stage.name  # its own job or another stage's
        if stage.job and stage.job.family in GPU_FAMILIES:
            assert stage.job.minutes, stage.name


def test_undeclared_rules_and_gpu_rules_without_a_gpu_family():
    envs = {"generate": "../envs/vllm.yaml", "qft": "../envs/train.yaml", "release": "../envs/cpu.yaml",
            "rerank": "../envs/cpu.yaml", "screen": "../envs/vllm.yaml", "check_optimizer": "../envs/vllm.yaml"}
    problems = undeclared_rules(envs, local={"check_optimizer"})
    assert len(problems) == 2
    assert problems[0].startswith("rule rerank is not declared in scalequest/registry.py")
    assert problems[1].startswith("rule screen runs in the GPU environment vllm.yaml but is declared cpu")


def workflow_rules(workdir, *args):
    return set(run_snakemake(workdir, "--list-rules", *args).stdout.split())


def test_every_rule_of_the_workflow_is_declared_and_every_declared_rule_exists(tmp_path):
    workdir = copy_workflow(tmp_path / "workflow")
    full = workflow_rules(workdir)
    tiny = workflow_rules(workdir, "--profile", "profiles/local")
    rehearsal = workflow_rules(workdir, "--profile", "profiles/local", "--configfile", "presets/rehearsal.yaml")
    declared = set(JOBS) | set(SUPPORT_RULES)
    assert full | tiny | rehearsal <= declared
    assert declared - (full | tiny | rehearsal) == {"import_questions"}  # it needs a file generator: none has one


@pytest.mark.parametrize("edit, message", [
    # a GPU stage moved out of the GPU families
    (("scalequest/registry.py", 'Job("filter", ENGINE,', 'Job("filter", CPU,'),
     "rule filter asks for a model engine's GPUs, but scalequest/registry.py declares it cpu"),
    # a new GPU rule, not declared
    (("rules/filter.smk", "rule filter:", "rule rerank:\n    output: 'x'\n    conda: '../envs/vllm.yaml'\n"
      "    shell: 'touch {output}'\n\n\nrule filter:"),
     "rule rerank is not declared in scalequest/registry.py"),
])
def test_the_workflow_refuses_to_start_with_a_rule_the_registry_does_not_match(tmp_path, edit, message):
    workdir = copy_workflow(tmp_path / "workflow")
    shutil.copytree(REPO / "scalequest", workdir / "scalequest")  # `python -m snakemake` imports the copy's package
    path, old, new = edit
    text = (workdir / path).read_text()
    assert old in text
    (workdir / path).write_text(text.replace(old, new, 1))
    result = run_snakemake(workdir, "-n", check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr


def test_rule_files_give_the_same_jobs_in_any_include_order(tmp_path):
    """Rule files share values only through rules/common.smk: reversed includes plan the same jobs."""
    workdir = copy_workflow(tmp_path / "workflow")
    snakefile = (workdir / "Snakefile").read_text()
    includes = re.findall(r'^include: "rules/(?!common)[a-z_]+\.smk"\n', snakefile, re.MULTILINE)
    assert len(includes) >= 10
    block = "".join(includes)
    assert block in snakefile
    (workdir / "Reversed.smk").write_text(snakefile.replace(block, "".join(reversed(includes))))
    # Every engine rule plans jobs: the contamination model screens (off by default) on too.
    (workdir / "screens.yaml").write_text("release: {decontamination: {judge: {enabled: true}, "
                                          "embedding: {model: qwen2-math-7b-instruct}}}\n")

    def jobs(*args):
        out = run_snakemake(workdir, "-n", "--quiet", "rules", "--configfile", "screens.yaml", *args).stdout
        return sorted(line.split()[:2] for line in out.splitlines() if re.match(r"^[a-z_]+\s+\d+$", line))

    planned = jobs()
    assert planned == jobs("-s", "Reversed.smk")
    assert {rule for rule, _ in planned} >= set(rules_of(ENGINE)) | {"release", "all"}
