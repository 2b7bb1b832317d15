"""Rule evaluate: the table of scores, recounted from every per-item record."""
if __name__ == "__main__":
    from scalequest.evaluation.scores import collect_scores, write_scores
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        scores = collect_scores(answer_paths=list(sm.input.answers),
                                item_paths=dict(zip(sm.params.benchmarks, sm.input.benchmarks)), rows=sm.params.rows,
                                samples=sm.params.samples, absent=sm.params.absent)
        print(write_scores(scores, sm.output.scores, sm.output.table))
