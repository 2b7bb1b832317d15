# Stage 6: merge, drop what rules dedup and decontaminate found, shuffle, Parquet + dataset card +
# funnel.json + contamination.jsonl.
RELEASE_DIR = f"{RESULTS}/release"


def release_inputs(wildcards):
    """The best pairs, the duplicates, the benchmark matches, and every stage's sidecars for the funnel."""
    inputs = {"best": all_shard_files("best"), "duplicates": DUPLICATES_FILE}
    if BENCHMARKS:
        inputs.update(contamination=all_shard_files("decontaminate"), benchmarks=BENCHMARK_SUMMARY)
    if DIFFICULTY_ON:
        inputs.update(keep_rates=KEEP_RATES, sampled=all_shard_files("sample"), scorer=SCORER_DIR)
    inputs.update({f"{stage}_stats": all_stats_files(stage) for stage in STAGES})
    return inputs


def release_settings():
    """What the card reports about how the data was made (no secrets live in the config)."""
    keys = ["seed", "generators", "generate", "filter", "difficulty", "respond", "reward"]
    settings = {key: config[key] for key in keys}
    settings["models"] = {key: config["models"][key]["path"] for key in sorted(config["models"])}
    settings["release"] = {key: config["release"][key] for key in ("near_dup", "decontamination")}
    return settings


rule release:
    input:
        unpack(release_inputs),
    output:
        data=directory(f"{RELEASE_DIR}/data"),
        card=f"{RELEASE_DIR}/README.md",
        funnel=f"{RELEASE_DIR}/funnel.json",
        contamination=f"{RELEASE_DIR}/contamination.jsonl",
    params:
        seed=derive_seed(config["seed"], "release", "all", 0),
        stages=STAGES,
        absent_benchmarks=ABSENT_BENCHMARKS,
        rows_per_file=config["release"]["rows_per_file"],
        name=config["release"]["name"],
        settings=release_settings(),
    log:
        f"{RESULTS}/logs/release.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/release.py"
