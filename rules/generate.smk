# Stage 3: question synthesis, one job per (generator, shard). A generator is a model, or a
# JSONL file of existing questions that enter the pipeline here.


if MODEL_GENERATORS:

    rule generate:
        input:
            model=generator_model_inputs,
            preflight=preflight_gate("generate"),
        output:
            shard=shard_file("generate"),
            stats=stats_file("generate"),
        wildcard_constraints:
            gen="|".join(re.escape(name) for name in MODEL_GENERATORS),
        params:
            model=generator_model,
            prompt_style=lambda w: config["generators"][w.gen]["prompt_style"],
            first_index=lambda w: generation_slice(w).start,
            questions=lambda w: generation_slice(w).size,
            sampling=config["generate"]["sampling"],
            seed=shard_seed("generate"),
        resources:
            **engine_resources("generate"),
        log:
            log_file("generate"),
        conda:
            "../envs/vllm.yaml"
        script:
            "../scripts/generate.py"


if FILE_GENERATORS:

    rule import_questions:
        input:
            questions_file=lambda w: config["generators"][w.gen]["questions_file"],
        output:
            shard=shard_file("generate"),
            stats=stats_file("generate"),
        wildcard_constraints:
            gen="|".join(re.escape(name) for name in FILE_GENERATORS),
        params:
            field=lambda w: config["generators"][w.gen]["question_field"],
            first_index=lambda w: generation_slice(w).start,
            questions=lambda w: generation_slice(w).size,
            seed=shard_seed("generate"),
        log:
            log_file("generate"),
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/import_questions.py"
