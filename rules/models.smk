# Models the workflow builds itself: the embedded tiny default (no downloads).
TINY_LM = built_model_path("tiny-lm")
TINY_REWARD = built_model_path("tiny-reward")
TINY_LM_SEED = derive_seed(config["seed"], "tiny-lm", "all", 0)
# Tiny random-weight twins of the full-scale architectures, for a rehearsal (presets/rehearsal.yaml).
LLAMA_TWIN = built_model_path("llama-twin")
MISTRAL_TWIN = built_model_path("mistral-twin")
INTERNLM2_REWARD_TWIN = built_model_path("internlm2-reward-twin")
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


if LLAMA_TWIN:

    rule build_llama_twin:
        output:
            directory(LLAMA_TWIN),
        params:
            seed=derive_seed(config["seed"], "llama-twin", "all", 0),
        log:
            f"{RESULTS}/logs/build_llama_twin.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/build_llama_twin.py"


if MISTRAL_TWIN:

    rule build_mistral_twin:
        output:
            directory(MISTRAL_TWIN),
        params:
            seed=derive_seed(config["seed"], "mistral-twin", "all", 0),
        log:
            f"{RESULTS}/logs/build_mistral_twin.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/build_mistral_twin.py"


if INTERNLM2_REWARD_TWIN:

    rule build_internlm2_reward_twin:
        output:
            directory(INTERNLM2_REWARD_TWIN),
        params:
            seed=derive_seed(config["seed"], "internlm2-reward-twin", "all", 0),
        log:
            f"{RESULTS}/logs/build_internlm2_reward_twin.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/build_internlm2_reward_twin.py"


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
