"""Rule eval_answers: one model's graded answers to one shard of a benchmark."""
if __name__ == "__main__":
    from scalequest.models import ModelSpec
    from scalequest.rule_job import rule_job
    from scalequest.stages.evaluate import evaluate_shard

    sm = snakemake  # noqa: F821
    with rule_job(sm):
        evaluate_shard(items_path=sm.input.benchmark, shard=sm.wildcards.shard, shards=sm.params.shards,
                       model=ModelSpec.from_entry(**sm.params.model), label=sm.wildcards.model,
                       dataset=sm.wildcards.dataset, samples=sm.params.samples, sampling=sm.params.sampling,
                       seed=sm.params.seed, chunk_size=sm.config["chunk_size"], out=sm.output.shard)
