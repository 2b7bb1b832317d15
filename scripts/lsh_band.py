"""Rule lsh_band: the candidate pairs of one LSH band over every minhash shard."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.dedup import lsh_band

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        lsh_band(minhash_paths=list(sm.input.minhash), band=int(sm.wildcards.band), out=sm.output.edges)
