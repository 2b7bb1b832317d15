"""Rule build_internlm2_reward_twin: build the InternLM2 reward twin, random weights, no download."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.tiny.twins import build_internlm2_reward_twin

    with rule_job(snakemake):  # noqa: F821 (injected by Snakemake)
        build_internlm2_reward_twin(snakemake.output[0], seed=snakemake.params.seed)  # noqa: F821
