"""Rule check_optimizer: the API optimizer's key is set and its endpoint serves the model."""
if __name__ == "__main__":
    from scalequest.atomic import write_json_atomic
    from scalequest.engines.openai_engine import check_endpoint
    from scalequest.joblog import job_log
    from scalequest.models import ModelSpec

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with job_log(sm.log[0], sm.rule, sm.output):
        optimizer = ModelSpec.from_entry(**sm.params.optimizer)
        check_endpoint(optimizer)
        write_json_atomic(sm.output[0], {"model": optimizer.key, "serves": optimizer.describe()})
