# Stage 5a: n responses per kept question (after difficulty sampling when it is on).


rule respond:
    input:
        questions=shard_file("sample" if DIFFICULTY_ON else "filter"),
        model=model_inputs(config["respond"]["model"]),
    output:
        shard=shard_file("respond"),
        stats=stats_file("respond"),
    params:
        model=model_params(config["respond"]["model"]),
        n=config["respond"]["n"],
        sampling=config["respond"]["sampling"],
        seed=shard_seed("respond"),
    log:
        log_file("respond"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/respond.py"
