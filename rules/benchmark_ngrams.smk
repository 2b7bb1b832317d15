# Release, decontamination: the benchmarks' n-gram index is built once, then every best shard is
# checked against it (rule screen, rules/screen.smk: stage `matches`). The release drops what this finds.


rule benchmark_ngrams:
    input:
        [entry["path"] for entry in BENCHMARKS.values() if entry.get("path")],
        prefetched(),
    output:
        benchmark_items=BENCHMARK_ITEMS,
        index=BENCHMARK_INDEX,
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
