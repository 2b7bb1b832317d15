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
    log:
        f"{RESULTS}/logs/plan.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/plan.py"


rule calibrate:
    input:
        unpack(sidecar_inputs),
    output:
        f"{RESULTS}/calibration.yaml",
    localrule: True
    log:
        f"{RESULTS}/logs/calibrate.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/calibrate.py"
