"""Rule sample: keep one shard's scored questions with the gathered keep rates."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.difficulty import sample_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule):
        sample_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, difficulty_path=sm.input.scored,
                     keep_rates_path=sm.input.keep_rates, seed=sm.params.seed, out=sm.output.shard)
