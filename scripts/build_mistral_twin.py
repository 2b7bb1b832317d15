"""Rule build_mistral_twin: build the Mistral twin (a sentencepiece-style base model), random weights, no download."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.tiny.twins import build_mistral_twin

    with rule_job(snakemake):  # noqa: F821 (injected by Snakemake)
        build_mistral_twin(snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821
