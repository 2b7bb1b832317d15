# Stage 5b: reward scores, then 5c: the best-of-n pair per question, in the same job (a job of its
# own would only reload the scores for a selection that takes a second).


rule reward:
    input:
        responses=shard_file("respond"),
        model=model_inputs(config["reward"]["model"]),
        preflight=preflight_gate("reward"),
    output:
        shard=shard_file("reward"),
        stats=stats_file("reward"),
        best=shard_file("best"),
        best_stats=stats_file("best"),
    params:
        model=model_params(config["reward"]["model"]),
        seed=shard_seed("reward"),
    resources:
        **engine_resources("reward"),
    log:
        log_file("reward"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/reward.py"
