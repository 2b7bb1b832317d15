"""Rule release: merge, drop duplicates and contaminated questions, shuffle; Parquet files, dataset
card, funnel.json, contamination.jsonl and number_variants.jsonl."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.release import release

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        release(best_paths=list(sm.input.best),
                stats_paths={stage: list(sm.input[f"{stage}_stats"]) for stage in sm.params.stages},
                duplicates_path=sm.input.duplicates, contamination_paths=list(sm.input.get("contamination", [])),
                model_matches_paths=list(sm.input.get("model_matches", [])),
                benchmarks_path=sm.input.get("benchmarks"), absent_benchmarks=sm.params.absent_benchmarks,
                screens=sm.params.screens, drop_variants=sm.params.drop_number_variants, seed=sm.params.seed,
                rows_per_file=sm.params.rows_per_file, name=sm.params.name, settings=sm.params.settings,
                data_dir=sm.output.data, card_path=sm.output.card, funnel_path=sm.output.funnel,
                contamination_out=sm.output.contamination, variants_out=sm.output.number_variants,
                difficulty={"keep_rates": sm.input.keep_rates, "sampled": list(sm.input.sampled),
                            "scorer": sm.input.scorer} if "keep_rates" in sm.input.keys() else None)
