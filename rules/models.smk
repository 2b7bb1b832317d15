# Models the workflow builds itself: the embedded tiny default (no downloads).
TINY_LM = built_model_path("tiny-lm")
TINY_REWARD = built_model_path("tiny-reward")
TINY_LM_SEED = derive_seed(config["seed"], "tiny-lm", "all", 0)
TINY_BENCHMARK = next((entry["path"] for entry in config["release"]["decontamination"]["benchmarks"].values()
                       if entry.get("build") == "tiny-benchmark"), None)

if TINY_LM:

    rule build_tiny_lm:
        output:
            directory(TINY_LM),
        params:
            seed=TINY_LM_SEED,
        log:
            f"{RESULTS}/logs/build_tiny_lm.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/build_tiny_lm.py"


if TINY_REWARD:

    rule build_tiny_reward:
        input:
            lm=TINY_LM,
        output:
            directory(TINY_REWARD),
        params:
            seed=derive_seed(config["seed"], "tiny-reward", "all", 0),
        log:
            f"{RESULTS}/logs/build_tiny_reward.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/build_tiny_reward.py"


if TINY_BENCHMARK:

    # The demo's benchmark, no download: problems held out from the tiny LM's corpus, and beside
    # them a few of those problems (planted.jsonl) for the seed questions, so there is something to catch.
    rule build_tiny_benchmark:
        output:
            heldout=TINY_BENCHMARK,
            planted=os.path.join(os.path.dirname(TINY_BENCHMARK), "planted.jsonl"),
        params:
            seed=derive_seed(config["seed"], "tiny-benchmark", "all", 0),
            lm_seed=TINY_LM_SEED,
        log:
            f"{RESULTS}/logs/build_tiny_benchmark.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/build_tiny_benchmark.py"
