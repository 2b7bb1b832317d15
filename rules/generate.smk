# Stage 3: question synthesis, one job per (generator, shard).


def generation_slice(wildcards):
    """The generator-wide question indices this shard owns."""
    return shard_slice(wildcards.shard, config["generators"][wildcards.gen]["questions"],
                       config["generate"]["shard_size"])


rule generate:
    input:
        model=lambda w: model_inputs(generator_model(w)),
    output:
        shard=shard_file("generate"),
        stats=stats_file("generate"),
    params:
        model=lambda w: model_params(generator_model(w)),
        prompt_style=lambda w: config["generators"][w.gen]["prompt_style"],
        first_index=lambda w: generation_slice(w).start,
        questions=lambda w: generation_slice(w).size,
        sampling=config["generate"]["sampling"],
        seed=shard_seed("generate"),
    log:
        log_file("generate"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/generate.py"
