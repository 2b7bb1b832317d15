"""Rule check_optimizer: the API optimizer's key is set and its endpoint serves the model."""
if __name__ == "__main__":
    from scalequest.api_check import check_optimizer_job
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        check_optimizer_job(sm.params.optimizer, sm.output[0])
