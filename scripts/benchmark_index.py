"""Rule benchmark_index: load the benchmark test sets; index their n-grams, and each one's lexical features apart."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.decontaminate import index_benchmarks

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        index_benchmarks(benchmarks=sm.params.benchmarks, ngram=sm.params.ngram, items_out=sm.output.benchmark_items,
                         index_out=sm.output.index, lexical_out=sm.output.lexical, summary_out=sm.output.summary)
