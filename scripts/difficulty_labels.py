"""Rule difficulty_labels: the solver's fail rate on one slice of the seed questions."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.models import ModelSpec
    from scalequest.stages.difficulty import label_shard

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        label_shard(part=sm.wildcards.part, seeds_path=sm.input.seeds, first=sm.params.first, count=sm.params.questions,
                    solver=ModelSpec.from_entry(**sm.params.solver), k=sm.params.k, sampling=sm.params.sampling,
                    seed=sm.params.seed, out=sm.output.shard)
