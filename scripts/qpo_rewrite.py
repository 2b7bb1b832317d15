"""Rule qpo_rewrite: the optimizer rewrites the sampled questions into preference pairs."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.qpo import build_pairs

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        build_pairs(generator=sm.wildcards.gen, samples_path=sm.input.samples,
                    optimizer=ModelSpec.from_entry(**sm.params.optimizer), prompts=sm.params.prompts,
                    sampling=sm.params.sampling,
                    judge=ModelSpec.from_entry(**sm.params.judge) if sm.params.judge else None,
                    judge_sampling=sm.params.judge_sampling, seed=sm.params.seed, cache_dir=sm.params.cache_dir,
                    chunk_size=sm.config["chunk_size"], out=sm.output.pairs)
