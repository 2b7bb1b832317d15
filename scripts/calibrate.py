"""Rule calibrate: the plan's throughput, keep rates and mean tokens measured from a run."""
if __name__ == "__main__":
    from scalequest.calibrate import calibration, write_calibration

    sm = snakemake  # noqa: F821
    stats = {name.removesuffix("_stats"): list(paths) for name, paths in sm.input.items()}
    write_calibration(sm.output[0], calibration(stats), source=sm.params.source)
