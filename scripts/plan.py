"""Rule plan: write the cost plan (Markdown and JSON) and print it."""
if __name__ == "__main__":
    from scalequest.atomic import write_json_atomic, write_text_atomic
    from scalequest.joblog import job_log
    from scalequest.plan import render_plan

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        write_json_atomic(sm.output.json, sm.params.plan)
        write_text_atomic(sm.output.table, render_plan(sm.params.plan))
    print(render_plan(sm.params.plan))
