"""Rule lsh_band: the candidate pairs of one LSH band over every minhash shard."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.dedup import lsh_band

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        lsh_band(minhash_paths=list(sm.input.minhash), band=int(sm.wildcards.band), out=sm.output.edges)
