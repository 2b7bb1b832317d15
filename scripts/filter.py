"""Rule filter: language and solvability filtering of one shard."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.filter import filter_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        filter_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, questions_path=sm.input.questions,
                     language=sm.params.language,
                     judge=ModelSpec.from_entry(**sm.params.judge) if sm.params.judge else None,
                     sampling=sm.params.sampling, seed=sm.params.seed, chunk_size=sm.config["chunk_size"],
                     out=sm.output.shard)
