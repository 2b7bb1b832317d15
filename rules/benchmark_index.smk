# Release, decontamination: the benchmarks' n-gram index and their lexical indexes (one per benchmark,
# in sections of one file: a verdict against a benchmark never depends on another) are built once, then
# every best shard is screened against them (rule screen, rules/screen.smk: stage `matches`). The
# release drops what this finds. A benchmark without questions stops this job, naming its file.


rule benchmark_index:
    input:
        [entry["path"] for entry in BENCHMARKS.values() if entry.get("path")],
        prefetched(),
    output:
        benchmark_items=BENCHMARK_ITEMS,
        index=BENCHMARK_INDEX,
        lexical=BENCHMARK_LEXICAL,
        summary=BENCHMARK_SUMMARY,
    params:
        benchmarks=BENCHMARKS,
        ngram=DECONTAMINATION["ngram"],
    localrule: True
    log:
        f"{RESULTS}/logs/benchmark_index.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/benchmark_index.py"
