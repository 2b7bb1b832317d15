"""Rule build_tiny_lm: train the embedded tiny causal LM and its tokenizer."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.tiny.build import build_tiny_lm

    with job_log(snakemake.log[0], snakemake.rule, snakemake.output):  # noqa: F821 (injected by Snakemake)
        build_tiny_lm(snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821
