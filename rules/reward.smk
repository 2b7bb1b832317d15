# Stage 5b: reward scores, then 5c: best-of-n.


rule reward:
    input:
        responses=shard_file("respond"),
        model=model_inputs(config["reward"]["model"]),
    output:
        shard=shard_file("reward"),
        stats=stats_file("reward"),
    params:
        model=model_params(config["reward"]["model"]),
        seed=shard_seed("reward"),
    log:
        log_file("reward"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/reward.py"


rule best:
    input:
        scored=shard_file("reward"),
    output:
        shard=shard_file("best"),
        stats=stats_file("best"),
    log:
        log_file("best"),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/best.py"
