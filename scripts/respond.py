"""Rule respond: n solver responses per question of one shard."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.models import ModelSpec
    from scalequest.stages.respond import respond_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule):
        respond_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, questions_path=sm.input.questions,
                      model=ModelSpec.from_entry(**sm.params.model), n=sm.params.n, sampling=sm.params.sampling,
                      seed=sm.params.seed, out=sm.output.shard)
