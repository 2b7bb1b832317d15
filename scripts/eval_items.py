"""Rule eval_items: a benchmark's items with their gold answers."""
if __name__ == "__main__":
    from scalequest.evaluation.items import write_items
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        write_items(sm.wildcards.bench, sm.params.entry, sm.output.benchmark)
