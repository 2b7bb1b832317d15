"""Rule prefetch: every hub model and dataset of the run into the Hugging Face cache."""
if __name__ == "__main__":
    from scalequest.prefetch import prefetch
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        prefetch(sm.params.hub, sm.output[0])
