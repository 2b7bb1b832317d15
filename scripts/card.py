"""Rule card: the release's README.md, with the evaluation's table when it ran."""
if __name__ == "__main__":
    from scalequest.card import write_card
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        write_card(sm.input.card, sm.input.get("table") or None, sm.output[0])
