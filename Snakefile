# ScaleQuest: scalable math question synthesis from scratch (arXiv 2410.18693).
#   snakemake --profile profiles/local     the embedded tiny default, on this machine's CPU
#   snakemake -n                           list the jobs of the full-scale run in config.yaml
#   snakemake plan --cores 1               its cost: GPU-hours and dollars per stage (results/plan.md)
#   snakemake evaluate                     SFT of base models on the release, scored on the benchmarks
from snakemake.utils import min_version

from scalequest.config import ConfigError
from scalequest.config_files import check_config_files
from scalequest.controller_lock import guard_snakemake_lock
from scalequest.registry import undeclared_rules

min_version("9.0")

# Snakemake's loader names neither file nor line for a YAML error, and keeps the last of two equal keys:
# read the config files strictly first. (It read the --configfile files before this file runs; the
# workflow profile, profiles/default, checks them before that, unless `--workflow-profile none`.)
try:
    check_config_files(["config.yaml", *([PRESET] if "PRESET" in globals() else [])],
                       workflow.config_settings.configfiles)
except ConfigError as error:
    raise WorkflowError(f"Configuration error: {error}") from None


configfile: "config.yaml"


# A preset (profiles/local: presets/tiny.smk names presets/tiny.yaml) goes over config.yaml and under
# the command line's --configfile and --config.
if globals().get("PRESET"):

    configfile: PRESET


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/prefetch.smk"
include: "rules/preflight.smk"
include: "rules/seed_questions.smk"
include: "rules/qft.smk"
include: "rules/qpo.smk"
include: "rules/generate.smk"
include: "rules/filter.smk"
include: "rules/difficulty.smk"
include: "rules/respond.smk"
include: "rules/reward.smk"
include: "rules/dedup.smk"
include: "rules/benchmark_index.smk"
include: "rules/screen.smk"
include: "rules/model_screen.smk"
include: "rules/release.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"
include: "rules/plan.smk"


# Every shard and its sidecar is a target too: Snakemake does not re-make a deleted intermediate file
# while the files made from it are up to date, so deleting either re-runs that shard and its dependents.
rule all:
    default_target: True
    input:
        rules.release.output,
        rules.card.output,
        rules.report_files.output,
        evaluation_targets(),
        [all_shard_files(stage) for stage in STAGES],
        [all_stats_files(stage) for stage in STAGES],


# Every rule is declared in scalequest/registry.py with its resource family: the Slurm profile gives the
# GPU families their GPUs, so a GPU rule left out (or declared CPU) would run without one.
_problems = undeclared_rules({rule.name: rule.conda_env for rule in workflow.rules}, workflow._localrules)
if _problems:
    raise WorkflowError("\n".join(_problems))


# One controller per results folder: a second run that would execute jobs is refused while one runs
# (scalequest/controller_lock.py; a dry run is not).
guard_snakemake_lock(RESULTS)


onsuccess:
    print(f"\nDataset: {RELEASE_DIR}/data  (datasets.load_dataset('parquet', data_files='{RELEASE_DIR}/data/*.parquet'))")
    print(f"Card:    {RELEASE_DIR}/README.md\nFunnel:  {RELEASE_DIR}/funnel.json")
