"""Rule decontaminate: the questions of one best shard that match a benchmark item."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.decontaminate import decontaminate_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule):
        decontaminate_shard(best_path=sm.input.best, items_path=sm.input.benchmark_items, index_path=sm.input.index,
                            ngram=sm.params.ngram, min_overlap=sm.params.min_overlap, out=sm.output.matches)
