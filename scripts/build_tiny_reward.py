"""Rule build_tiny_reward: fine-tune the tiny reward model from the tiny LM."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.tiny.build import build_tiny_reward

    with rule_job(snakemake):  # noqa: F821
        build_tiny_reward(snakemake.input.lm, snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821
