# Release, decontamination: the benchmarks' n-gram index is built once, then every best shard is
# checked against it (rule screen, rules/screen.smk). The release drops what this finds.
from scalequest.decontam import benchmarks_in_use

DECONTAMINATION = config["release"]["decontamination"]
# Benchmarks marked optional whose file is not there are left out, and the card says so.
BENCHMARKS, ABSENT_BENCHMARKS = benchmarks_in_use(DECONTAMINATION["benchmarks"]) if DECONTAMINATION["enabled"] else ({}, {})
BENCHMARK_DIR = f"{RESULTS}/benchmarks"
BENCHMARK_SUMMARY = f"{BENCHMARK_DIR}/benchmarks.json"


rule benchmark_ngrams:
    input:
        [entry["path"] for entry in BENCHMARKS.values() if entry.get("path")],
        prefetched(),
    output:
        benchmark_items=f"{BENCHMARK_DIR}/items.parquet",
        index=f"{BENCHMARK_DIR}/ngrams.npz",
        summary=BENCHMARK_SUMMARY,
    params:
        benchmarks=BENCHMARKS,
        ngram=DECONTAMINATION["ngram"],
    localrule: True
    log:
        f"{RESULTS}/logs/benchmark_ngrams.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/benchmark_ngrams.py"
