"""Rule plan: write the cost plan (Markdown and JSON) and print it."""
if __name__ == "__main__":
    from scalequest.plan import write_plan
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        table = write_plan(sm.params.plan, table_path=sm.output.table, json_path=sm.output.json)
    print(table)  # after the log: to the terminal
