"""Rule import_questions: one shard of questions taken from a JSONL file."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.import_questions import import_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        import_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, first_index=sm.params.first_index,
                     count=sm.params.questions, questions_file=sm.input.questions_file, field=sm.params.field,
                     seed=sm.params.seed, out=sm.output.shard)
