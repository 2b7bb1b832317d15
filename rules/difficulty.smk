# Stage 4c, difficulty: the solver's fail rates on the seed questions label them; a regression head
# trained on the labels scores every question that passed the filters; one job turns the keep rule
# into keep rates over all scores; each shard's respond job then applies them with the shard's own
# seed (stage `sample`, rules/respond.smk).


if DIFFICULTY_ON:  # the keep rule was checked with the config (validate_config)

    rule difficulty_labels:
        input:
            seeds=SEED_QUESTIONS,
            model=model_inputs(DIFFICULTY["labels"]["solver"]),
            preflight=preflight_gate("difficulty_labels"),
        output:
            shard=label_file(),
            stats=label_stats_file(),
        wildcard_constraints:
            part=SHARD_PATTERN,
        params:
            solver=model_params(DIFFICULTY["labels"]["solver"]),
            k=DIFFICULTY["labels"]["k"],
            sampling=DIFFICULTY["labels"]["sampling"],
            first=lambda w: int(w.part) * DIFFICULTY["labels"]["shard_size"],
            questions=DIFFICULTY["labels"]["shard_size"],
            seed=lambda w: derive_seed(config["seed"], "difficulty_labels", "seeds", w.part),
        resources:
            **engine_resources("difficulty_labels"),
        log:
            f"{RESULTS}/logs/difficulty_labels/{{part}}.log",
        conda:
            "../envs/vllm.yaml"
        script:
            "../scripts/difficulty_labels.py"

    rule difficulty_train:
        input:
            data=[label_file(part) for part in LABEL_PARTS],
            model=model_inputs(DIFFICULTY["scorer"]["model"]),
            preflight=preflight_gate("difficulty_train"),
        output:
            model=directory(SCORER_DIR),
        params:
            kind="scorer",
            model=model_params(DIFFICULTY["scorer"]["model"]),
            prompt_style=None,
            hyper=DIFFICULTY["scorer"]["hyper"],
            deepspeed=config["training"]["deepspeed"],
            launch=training_launch(),
            min_examples=DIFFICULTY["labels"]["min_labels"],
            seed=derive_seed(config["seed"], "difficulty_train", "all", 0),
        resources:
            **training_resources(),
        log:
            f"{RESULTS}/logs/difficulty_train.log",
        conda:
            "../envs/train.yaml"
        script:
            "../scripts/train.py"

    rule difficulty:
        input:
            questions=shard_file("filter"),
            model=SCORER_DIR,
            preflight=preflight_gate("difficulty"),
        output:
            shard=shard_file("difficulty"),
            stats=stats_file("difficulty"),
        params:
            scorer=scorer_params(),
            seed=shard_seed("difficulty"),
        resources:
            **engine_resources("difficulty"),
        log:
            log_file("difficulty"),
        conda:
            "../envs/vllm.yaml"
        script:
            "../scripts/difficulty.py"

    rule difficulty_gather:
        input:
            scored=all_shard_files("difficulty"),
        output:
            keep_rates=KEEP_RATES,
        params:
            keep=DIFFICULTY["keep"],
        log:
            f"{RESULTS}/logs/difficulty_gather.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/difficulty_gather.py"
