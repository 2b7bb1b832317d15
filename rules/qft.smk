# Stage 1, QFT: SFT of each generator's solver on the seed questions (training: qft or qpo).


if TRAINED_GENERATORS["qft"]:

    rule qft:
        input:
            data=SEED_QUESTIONS,
            model=lambda w: model_inputs(base_model(w)),
            optimizer_check=lambda w: optimizer_check(w),
            preflight=preflight_gate("qft"),
        output:
            model=directory(trained_model_dir("qft")),
        wildcard_constraints:
            gen="|".join(re.escape(name) for name in TRAINED_GENERATORS["qft"]),
        params:
            kind="qft",
            model=lambda w: model_params(base_model(w)),
            prompt_style=lambda w: config["generators"][w.gen]["prompt_style"],
            hyper={**config["qft"]["hyper"], "packing": config["qft"]["packing"]},
            deepspeed=config["training"]["deepspeed"],
            launch=training_launch(),
            min_examples=None,
            seed=lambda w: derive_seed(config["seed"], "qft", w.gen, 0),
        resources:
            **training_resources(),
        log:
            f"{RESULTS}/logs/qft/{{gen}}.log",
        conda:
            "../envs/train.yaml"
        script:
            "../scripts/train.py"
