"""Rule reward: reward-model scores for every response of one shard, then its best-of-n pairs."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.reward import reward_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        reward_job(generator=sm.wildcards.gen, shard=sm.wildcards.shard, responses_path=sm.input.responses,
                   model=ModelSpec.from_entry(**sm.params.model), seed=sm.params.seed,
                   chunk_size=sm.config["chunk_size"], rewarded_out=sm.output.shard,
                   best_out=sm.output.best)
