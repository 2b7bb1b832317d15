"""Rule screen: one best shard's MinHash keys (for dedup) and its benchmark matches (for decontamination)."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.stages.screen import screen_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        screen_shard(best_path=sm.input.best, minhash_out=sm.output.minhash, ngram=sm.params.ngram,
                     num_perm=sm.params.num_perm, bands=sm.params.bands, seed=sm.params.seed,
                     decontamination=sm.params.decontamination,
                     benchmark_files={name: sm.input.get(name) for name in ("benchmark_items", "index", "lexical")},
                     matches_out=sm.output.get("matches"))
