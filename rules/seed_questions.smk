# The seed questions (GSM8K + MATH train in the paper): QFT trains on them, the difficulty labels
# grade the solver on them. Made once when either needs them.


if TRAINED_GENERATORS["qft"] or DIFFICULTY_ON:

    rule seed_questions:
        input:
            local_source_files(config["seeds"]["sources"]),
            prefetched(),
        output:
            questions=SEED_QUESTIONS,
            stats=SEED_QUESTIONS.removesuffix(".jsonl") + ".stats.json",
        params:
            sources=config["seeds"]["sources"],
            max_questions=config["seeds"]["max_questions"],
            seed=derive_seed(config["seed"], "seed_questions", "all", 0),
        log:
            f"{RESULTS}/logs/seed_questions.log",
        conda:
            "../envs/cpu.yaml"
        script:
            "../scripts/seed_questions.py"
