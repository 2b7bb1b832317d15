# The cost plan from the config alone: `snakemake plan --cores 1` writes it and prints it. After a
# run, `snakemake calibrate` measures the plan's figures from its stats sidecars.
from scalequest.plan import build_plan


rule plan:
    output:
        table=f"{RESULTS}/plan.md",
        json=f"{RESULTS}/plan.json",
    params:
        plan=build_plan(config),
    localrule: True
    script:
        "../scripts/plan.py"


def calibration_inputs(wildcards):
    stats = {f"{stage}_stats": all_stats_files(stage) for stage in STAGES}
    if DIFFICULTY_ON:
        stats["difficulty_labels_stats"] = [label_stats_file(part) for part in LABEL_PARTS]
    return stats


rule calibrate:
    input:
        unpack(calibration_inputs),
    output:
        f"{RESULTS}/calibration.yaml",
    params:
        source=RESULTS,
    localrule: True
    script:
        "../scripts/calibrate.py"
