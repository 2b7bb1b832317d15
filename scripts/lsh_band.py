"""Rule lsh_band: the candidate pairs of one LSH band over every minhash shard."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.dedup import lsh_band_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        lsh_band_job(minhash_list=sm.input.minhash_list, band=int(sm.wildcards.band), out=sm.output.edges)
