"""Rule report_files: the report's figures and tables from the release."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.report import write_report_files

    sm = snakemake  # noqa: F821
    with job_log(sm.log[0], sm.rule, sm.output):
        write_report_files(funnel_path=sm.input.funnel, data_dir=sm.input.data, config=sm.params.config,
                           samples=sm.params.samples, seed=sm.params.seed, out=dict(sm.output.items()))
