"""Rule respond: n solver responses per question of one shard (drawn first by difficulty sampling
when it is on)."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.models import ModelSpec
    from scalequest.stages.respond import respond_job

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        sample = dict(difficulty_path=sm.input.scored, keep_rates_path=sm.input.keep_rates, seed=sm.params.sample_seed,
                      out=sm.output.sampled) if sm.params.sample_seed is not None else None
        respond_job(generator=sm.wildcards.gen, shard=sm.wildcards.shard, questions_path=sm.input.get("questions"),
                    sample=sample, model=ModelSpec.from_entry(**sm.params.model), n=sm.params.n,
                    sampling=sm.params.sampling, seed=sm.params.seed, out=sm.output.shard)
