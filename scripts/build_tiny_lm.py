"""Rule build_tiny_lm: train the embedded tiny causal LM and its tokenizer."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.tiny.build import build_tiny_lm

    with rule_job(snakemake):  # noqa: F821 (injected by Snakemake)
        build_tiny_lm(snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821
