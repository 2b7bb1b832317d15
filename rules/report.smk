# The run report: figures and tables made from the release. `snakemake --report FILE.html` embeds
# them, with every job's provenance and run time, in one HTML file.


rule report_files:
    input:
        unpack(sidecar_inputs),  # the sidecars: the interruptions table
        funnel=RELEASE_FUNNEL,
        data=RELEASE_DATA,
        preflight=preflight_reports(),
    output:
        funnel=report_file("funnel.png", "Funnel", "funnel.rst"),
        lengths=report_file("lengths.png", "Distributions", "lengths.rst"),
        rewards=report_file("rewards.png", "Distributions", "rewards.rst"),
        difficulty=report_file("difficulty.png", "Difficulty", "difficulty.rst"),
        contamination=report_file("contamination.png", "Decontamination", "contamination.rst"),
        interruptions=report_file("interruptions.html", "Run", "interruptions.rst"),
        preflight=report_file("preflight.html", "Run", "preflight.rst"),
        samples=report_file("samples.html", "Sample pairs", "samples.rst"),
        config=report_file("config.yaml", "Configuration", "config.rst"),
    params:
        config=config,
        samples=20,
        seed=derive_seed(config["seed"], "report", "all", 0),
    localrule: True
    log:
        f"{RESULTS}/logs/report_files.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/report_files.py"


if EVALUATION["enabled"]:

    rule report_evaluation:
        input:
            scores=SCORES,
        output:
            report_file("evaluation.html", "Evaluation", "evaluation.rst"),
        localrule: True
        log:
            f"{RESULTS}/logs/report_evaluation.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/report_evaluation.py"
