"""Rule difficulty: the scorer's predicted fail rate for every question of one filter shard."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.difficulty import score_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        score_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, questions_path=sm.input.questions,
                    scorer=ModelSpec.from_entry(**sm.params.scorer), seed=sm.params.seed,
                    chunk_size=sm.config["chunk_size"], out=sm.output.shard)
