"""Rule best: best-of-n selection for one shard."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.best import best_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule):
        best_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, scored_path=sm.input.scored,
                   out=sm.output.shard)
