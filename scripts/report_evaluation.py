"""Rule report_evaluation: the evaluation's table of scores as a page of the run report."""
if __name__ == "__main__":
    from scalequest.report import evaluation_table
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        evaluation_table(sm.input.scores, sm.output[0])
