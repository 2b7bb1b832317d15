"""Rule seed_questions: merge, dedup and cap the QFT seed questions."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.seeds import collect_seed_questions

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        collect_seed_questions(sources=sm.params.sources, max_questions=sm.params.max_questions,
                               seed=sm.params.seed, out=sm.output.questions, stats_out=sm.output.stats)
