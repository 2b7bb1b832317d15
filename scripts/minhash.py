"""Rule minhash: exact key, LSH band keys and MinHash signature of every question of one best shard."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.dedup import minhash_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule):
        minhash_shard(best_path=sm.input.best, out=sm.output.shard, ngram=sm.params.ngram, num_perm=sm.params.num_perm,
                      bands=sm.params.bands, seed=sm.params.seed)
