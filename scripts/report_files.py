"""Rule report_files: the report's figures and tables from the release."""
if __name__ == "__main__":
    from scalequest.report import write_report_files
    from scalequest.rule_job import rule_job

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        write_report_files(funnel_path=sm.input.funnel, data_dir=sm.input.data,
                           stats_paths=[path for name in sm.input.keys() if name.endswith("_stats")
                                        for path in sm.input[name]], preflight_paths=list(sm.input.preflight),
                           config=sm.params.config, samples=sm.params.samples, seed=sm.params.seed,
                           out=dict(sm.output.items()))
