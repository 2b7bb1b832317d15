"""Rule reward: reward-model scores for every response of one shard, then its best-of-n pairs."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.models import ModelSpec
    from scalequest.stages.best import best_shard
    from scalequest.stages.reward import reward_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        reward_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, responses_path=sm.input.responses,
                     model=ModelSpec.from_entry(**sm.params.model), seed=sm.params.seed, out=sm.output.shard)
        best_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, scored_path=sm.output.shard,
                   out=sm.output.best)
