# Stage 2, QPO: sample questions from the QFT model, rewrite them with the optimizer into
# preference pairs, and train DPO on them (reference = the QFT model).
from scalequest.api_check import warn_at_exit
from scalequest.models import ModelSpec

# A dry run says what will stop the real run at check_optimizer (no key, an endpoint that does not answer).
if TRAINED_GENERATORS["qpo"] and API_OPTIMIZER and not os.path.exists(OPTIMIZER_CHECK):
    warn_at_exit(ModelSpec.from_config(config, OPTIMIZER), "the run will stop at rule check_optimizer, before any job.")


if TRAINED_GENERATORS["qpo"] and API_OPTIMIZER:

    rule check_optimizer:
        output:
            OPTIMIZER_CHECK,
        params:
            optimizer=model_params(OPTIMIZER),
        localrule: True
        priority: 100
        log:
            f"{RESULTS}/logs/check_optimizer.log",
        conda:
            "../envs/vllm.yaml"  # the OpenAI client qpo_rewrite uses
        script:
            "../scripts/check_optimizer.py"


if TRAINED_GENERATORS["qpo"]:

    rule qpo_sample:
        input:
            model=trained_model_dir("qft"),
            preflight=preflight_gate("qpo_sample"),
        output:
            samples=f"{QPO_DIR}/samples.parquet",
            stats=f"{QPO_DIR}/samples.stats.json",
        wildcard_constraints:
            gen="|".join(re.escape(name) for name in TRAINED_GENERATORS["qpo"]),
        params:
            model=lambda w: trained_model_params(w.gen, "qft"),
            prompt_style=lambda w: config["generators"][w.gen]["prompt_style"],
            questions=config["qpo"]["samples"],
            sampling=config["qpo"]["sampling"],
            seed=lambda w: derive_seed(config["seed"], "qpo_sample", w.gen, 0),
        resources:
            **engine_resources("qpo_sample"),
        log:
            f"{RESULTS}/logs/qpo_sample/{{gen}}.log",
        conda:
            "../envs/vllm.yaml"
        script:
            "../scripts/qpo_sample.py"

    rule qpo_rewrite:
        input:
            samples=f"{QPO_DIR}/samples.parquet",
            model=model_inputs(OPTIMIZER),
            preflight=preflight_gate("qpo_rewrite"),
        output:
            pairs=f"{QPO_DIR}/pairs.parquet",
            stats=f"{QPO_DIR}/pairs.stats.json",
        params:
            optimizer=model_params(OPTIMIZER),
            prompts=config["qpo"]["optimizer"]["prompts"],
            sampling=config["qpo"]["optimizer"]["sampling"],
            judge=model_params(SOLVABILITY["model"]) if config["qpo"]["judge"] else None,
            judge_sampling=SOLVABILITY["sampling"],
            # Answers outlive a failed or re-run job: a restart never pays for a request twice.
            cache_dir=f"{RESULTS}/cache/optimizer",
            seed=lambda w: derive_seed(config["seed"], "qpo_rewrite", w.gen, 0),
        resources:
            **engine_resources("qpo_rewrite"),
        localrule: loads_no_model("qpo_rewrite")
        log:
            f"{RESULTS}/logs/qpo_rewrite/{{gen}}.log",
        conda:
            "../envs/vllm.yaml"
        script:
            "../scripts/qpo_rewrite.py"

    rule qpo_train:
        input:
            data=f"{QPO_DIR}/pairs.parquet",
            model=trained_model_dir("qft"),
            preflight=preflight_gate("qpo_train"),
        output:
            model=directory(trained_model_dir("qpo")),
        params:
            kind="qpo",
            model=lambda w: trained_model_params(w.gen, "qft"),
            prompt_style=lambda w: config["generators"][w.gen]["prompt_style"],
            hyper={**config["qpo"]["hyper"], "beta": config["qpo"]["beta"], "loss_type": config["qpo"]["loss_type"]},
            deepspeed=config["training"]["deepspeed"],
            launch=training_launch(),
            min_examples=config["qpo"]["min_pairs"],
            seed=lambda w: derive_seed(config["seed"], "qpo_train", w.gen, 0),
        resources:
            **training_resources(),
        log:
            f"{RESULTS}/logs/qpo_train/{{gen}}.log",
        conda:
            "../envs/train.yaml"
        script:
            "../scripts/train.py"
