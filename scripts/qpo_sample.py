"""Rule qpo_sample: questions sampled from a QFT model, for the optimizer to rewrite."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.generate import generate_shard

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        generate_shard(generator=sm.wildcards.gen, shard="00000", first_index=0, count=sm.params.questions,
                       model=ModelSpec.from_entry(**sm.params.model), prompt_style=sm.params.prompt_style,
                       sampling=sm.params.sampling, seed=sm.params.seed, chunk_size=sm.config["chunk_size"],
                       out=sm.output.samples, stage="qpo_sample")
