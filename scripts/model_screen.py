"""Rule model_screen: one best shard's benchmark matches by embedding and by the judge."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.model_screen import model_screen_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        embedder, judge = (ModelSpec.from_entry(**params) if params else None
                           for params in (sm.params.embedder, sm.params.judge))
        model_screen_shard(generator=sm.wildcards.gen, shard=sm.wildcards.shard, best_path=sm.input.best,
                           matches_path=sm.input.matches,
                           benchmark_files={name: sm.input[name] for name in ("benchmark_items", "index", "lexical")},
                           decontamination=sm.params.decontamination, embedder=embedder, judge=judge,
                           seed=sm.params.seed, chunk_size=sm.config["chunk_size"], out=sm.output.shard)
