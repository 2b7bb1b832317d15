"""Rule dedup: exact and near-duplicate groups over the whole release, and the row each one keeps."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.dedup import find_duplicates

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        find_duplicates(minhash_paths=list(sm.input.minhash), band_paths=list(sm.input.bands),
                        threshold=sm.params.threshold, out=sm.output.duplicates)
