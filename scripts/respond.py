"""Rule respond: n solver responses per question of one shard (drawn first by difficulty sampling
when it is on)."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.respond import respond_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        respond_job(generator=sm.wildcards.gen, shard=sm.wildcards.shard, questions_path=sm.input.get("questions"),
                    scored_path=sm.input.get("scored"), keep_rates_path=sm.input.get("keep_rates"),
                    sample_seed=sm.params.sample_seed, sampled_out=sm.output.get("sampled"),
                    model=ModelSpec.from_entry(**sm.params.model), n=sm.params.n, sampling=sm.params.sampling,
                    seed=sm.params.seed, chunk_size=sm.config["chunk_size"], out=sm.output.shard)
