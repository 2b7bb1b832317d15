# Release, per best shard, only when release.decontamination names a model screen (embedding, judge):
# one GPU job embeds the shard and the benchmarks and puts the candidate items the model-free screens
# (rule screen) left open to the judge. The release drops what it finds too.


rule model_screen:
    input:
        best=shard_file("best"),
        matches=shard_file("matches"),
        **benchmark_index_inputs(),
        models=[model_inputs(key) for key in CONTAMINATION_MODELS.values() if key],
        preflight=preflight_gate("model_screen"),
    output:
        shard=shard_file("model_matches"),
        stats=stats_file("model_matches"),
    params:
        decontamination=DECONTAMINATION,
        embedder=model_params(CONTAMINATION_MODELS["embedding"]) if CONTAMINATION_MODELS["embedding"] else None,
        judge=model_params(CONTAMINATION_MODELS["judge"]) if CONTAMINATION_MODELS["judge"] else None,
        seed=shard_seed("model_matches"),
    resources:
        **engine_resources("model_screen"),
    log:
        log_file("model_screen"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/model_screen.py"
