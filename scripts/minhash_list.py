"""Rule minhash_list: the minhash shards, in order, in one file that the band jobs read."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.dedup import write_minhash_list

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        write_minhash_list(list(sm.input.minhash), sm.output[0])
