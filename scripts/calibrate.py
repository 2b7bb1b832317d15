"""Rule calibrate: the plan's throughput, keep rates and mean tokens measured from a run."""
if __name__ == "__main__":
    import os

    from scalequest.calibrate import calibration, write_calibration
    from scalequest.joblog import job_log

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        stats = {name.removesuffix("_stats"): list(paths) for name, paths in sm.input.items()}
        write_calibration(sm.output[0], calibration(stats), source=os.path.dirname(sm.output[0]))
