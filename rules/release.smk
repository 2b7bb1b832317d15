# Stage 6: merge, drop what rules dedup and screen found, shuffle, Parquet + dataset card +
# funnel.json + contamination.jsonl (the dropped benchmark matches) + number_variants.jsonl (the released ones).


rule release:
    input:
        unpack(release_inputs),
    output:
        data=directory(RELEASE_DATA),
        card=f"{RELEASE_DIR}/README.md",
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
