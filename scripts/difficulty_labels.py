"""Rule difficulty_labels: the solver's fail rate on one slice of the seed questions."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.difficulty import label_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        label_shard(part=sm.wildcards.part, seeds_path=sm.input.seeds, first=sm.params.first, count=sm.params.questions,
                    solver=ModelSpec.from_entry(**sm.params.solver), k=sm.params.k, sampling=sm.params.sampling,
                    seed=sm.params.seed, chunk_size=sm.config["chunk_size"], out=sm.output.shard)
