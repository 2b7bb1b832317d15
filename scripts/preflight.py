"""Rule preflight: check the node a partition's GPU jobs will run on, in their environment."""
if __name__ == "__main__":
    from scalequest.preflight import preflight_job
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        preflight_job(sm.config, sm.params.need["rules"], sm.wildcards.partition, sm.wildcards.env,
                      sm.params.need["gpus"], sm.params.need["datasets"], sm.output[0])
