"""Rule sft_data: one dataset's question/response pairs as the JSONL file the SFT reads."""
if __name__ == "__main__":
    from scalequest.evaluation.pairs import write_pairs
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        funnel = write_pairs(sm.wildcards.dataset, sm.params.entry, list(sm.input), sm.output.pairs, sm.output.stats)
        print(f"{sm.wildcards.dataset}: {funnel.kept} pairs ({funnel.total - funnel.kept} empty ones dropped)")
