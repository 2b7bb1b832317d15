"""Rule difficulty_gather: keep rates per score bin from every shard's scores and the keep rule."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.stages.sample import gather_scores

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        gather_scores(difficulty_paths=list(sm.input.scored), keep=sm.params.keep, out=sm.output.keep_rates)
