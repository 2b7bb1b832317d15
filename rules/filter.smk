# Stage 4: language and solvability filters (then the difficulty stage, rules/difficulty.smk, when it is on).


rule filter:
    input:
        questions=shard_file("generate"),
        model=model_inputs(SOLVABILITY["model"]) if SOLVABILITY["enabled"] else [],
        preflight=preflight_gate("filter"),
    output:
        shard=shard_file("filter"),
        stats=stats_file("filter"),
    params:
        language=config["filter"]["language"],
        judge=model_params(SOLVABILITY["model"]) if SOLVABILITY["enabled"] else None,
        sampling=SOLVABILITY["sampling"],
        seed=shard_seed("filter"),
    resources:
        **engine_resources("filter"),
    localrule: loads_no_model("filter")
    log:
        log_file("filter"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/filter.py"
