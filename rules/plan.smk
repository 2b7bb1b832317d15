# The cost plan from the config alone: `snakemake plan --cores 1` writes it and prints it.
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
