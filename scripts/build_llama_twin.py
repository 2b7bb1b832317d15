"""Rule build_llama_twin: build the Llama twin (DeepSeek-Math's kind of tokenizer), random weights."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.tiny.twins import build_llama_twin

    with rule_job(snakemake):  # noqa: F821 (injected by Snakemake)
        build_llama_twin(snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821
