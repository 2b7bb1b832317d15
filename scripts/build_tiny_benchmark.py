"""Rule build_tiny_benchmark: the demo's held-out benchmark and the few of its problems planted in the seeds."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.tiny.benchmark import write_tiny_benchmark

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        write_tiny_benchmark(sm.output.heldout, sm.output.planted, seed=sm.params.seed, lm_seed=sm.params.lm_seed)
