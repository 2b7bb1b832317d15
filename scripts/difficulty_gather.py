"""Rule difficulty_gather: keep rates per score bin from every shard's scores and the keep rule."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.sample import gather_scores

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        gather_scores(difficulty_paths=list(sm.input.scored), keep=sm.params.keep, out=sm.output.keep_rates)
