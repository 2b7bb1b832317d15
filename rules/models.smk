# Models the workflow builds itself: the embedded tiny default (no downloads).
TINY_LM = built_model_path("tiny-lm")
TINY_REWARD = built_model_path("tiny-reward")

if TINY_LM:

    rule build_tiny_lm:
        output:
            directory(TINY_LM),
        params:
            seed=derive_seed(config["seed"], "tiny-lm", "all", 0),
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
