"""Rule dedup: exact and near-duplicate groups over the whole release, and the row each one keeps."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.dedup import find_duplicates

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        find_duplicates(minhash_paths=list(sm.input.minhash), band_paths=list(sm.input.bands),
                        threshold=sm.params.threshold, out=sm.output.duplicates)
