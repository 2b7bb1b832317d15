# Stage 6: merge, drop what rules dedup and screen found, shuffle, Parquet + dataset card +
# funnel.json + contamination.jsonl (the dropped benchmark matches) + number_variants.jsonl (the released ones).

import os
import sys

from snakemake_interface_executor_plugins.settings import ExecMode

# A release whose data files disagree with its funnel.json (a file deleted or replaced by hand) is made
# again: funnel.json goes, so that Snakemake sees an output of the release missing. Checked by the
# controller and a dry run, not by a cluster job's own snakemake.
if workflow.exec_mode == ExecMode.DEFAULT and os.path.exists(RELEASE_FUNNEL):
    from scalequest.stages.release import forget_disagreeing_release

    _said = forget_disagreeing_release(RELEASE_DIR)
    if _said:
        print(_said, file=sys.stderr)


rule release:
    input:
        unpack(release_inputs),
    output:
        data=directory(RELEASE_DATA),
        card=f"{RESULTS}/card/release.md",  # the card without the evaluation; rule card writes README.md
        funnel=RELEASE_FUNNEL,
        contamination=f"{RELEASE_DIR}/contamination.jsonl",
        number_variants=f"{RELEASE_DIR}/number_variants.jsonl",
    params:
        seed=derive_seed(config["seed"], "release", "all", 0),
        stages=STAGES,
        absent_benchmarks=ABSENT_BENCHMARKS,
        screens=contamination_screens(config),
        drop_number_variants=DECONTAMINATION["number_variants"]["drop"],
        rows_per_file=config["release"]["rows_per_file"],
        name=config["release"]["name"],
        settings=release_settings(),
    log:
        f"{RESULTS}/logs/release.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/release.py"


# The release's README.md: the card, with the evaluation's table when the evaluation is on (it trains
# on the release, so it cannot be in the release job's card).
rule card:
    input:
        card=rules.release.output.card,
        table=SCORES_TABLE if EVALUATION["enabled"] else [],
    output:
        RELEASE_CARD,
    localrule: True
    log:
        f"{RESULTS}/logs/card.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/card.py"
