"""Rule calibrate: the plan's throughput, keep rates and mean tokens measured from a run."""
if __name__ == "__main__":
    from scalequest.calibrate import calibrate_run
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        calibrate_run({name.removesuffix("_stats"): list(paths) for name, paths in sm.input.items()}, sm.output[0])
