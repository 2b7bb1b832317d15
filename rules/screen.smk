# Release, per best shard: one job screens it for both release checks, its MinHash keys (exact and
# near-duplicate detection) and its benchmark matches (decontamination): a few seconds of CPU each,
# not worth two cluster jobs.


rule screen:
    input:
        best=shard_file("best"),
        **benchmark_index_inputs(),
    output:
        minhash=shard_file("minhash"),
        **matches_output(),
    params:
        ngram=NEAR_DUP["ngram"],
        num_perm=NEAR_DUP["num_perm"],
        bands=NEAR_DUP["bands"],
        seed=derive_seed(config["seed"], "minhash", "all", 0),  # one seed: every shard uses the same hash functions
        decontamination=MODEL_FREE_SCREENS if BENCHMARKS else None,
    log:
        log_file("screen"),
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/screen.py"
