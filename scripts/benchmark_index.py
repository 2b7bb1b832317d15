"""Rule benchmark_index: load the benchmark test sets and index their n-grams and lexical features."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.decontaminate import index_benchmarks

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        index_benchmarks(benchmarks=sm.params.benchmarks, ngram=sm.params.ngram, items_out=sm.output.benchmark_items,
                         index_out=sm.output.index, lexical_out=sm.output.lexical, summary_out=sm.output.summary)
