"""Rule prefetch: every hub model and dataset of the run into the Hugging Face cache."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.prefetch import prefetch

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        prefetch(sm.params.hub, sm.output[0])
