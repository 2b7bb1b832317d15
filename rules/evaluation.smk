# What the data is worth: SFT of each base model on each dataset (the release by default), then
# zero-shot chain-of-thought answers to the benchmarks, graded, and the table of scores.
#   snakemake evaluate            the target: results/evaluation/scores.json and table.md


rule sft_data:
    input:
        sft_data_inputs,
    output:
        pairs=sft_pairs_file(),
        stats=f"{EVAL_DIR}/datasets/{{dataset}}.stats.json",
    wildcard_constraints:
        dataset="|".join(re.escape(name) for name in EVALUATION["datasets"]) or "^$",
    params:
        entry=sft_dataset_entry,
    log:
        f"{RESULTS}/logs/sft_data/{{dataset}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/sft_data.py"


rule sft:
    input:
        data=sft_pairs_file(),
        model=lambda w: model_inputs(w.model),
        preflight=preflight_gate("sft"),
    output:
        model=directory(sft_model_dir()),
    wildcard_constraints:
        model="|".join(re.escape(key) for key in EVALUATION["base_models"]) or "^$",
        dataset="|".join(re.escape(name) for name in EVALUATION["datasets"]) or "^$",
    params:
        kind="sft",
        model=lambda w: model_params(w.model),
        prompt_style=None,
        hyper=lambda w: sft_hyper(config, w.model),
        deepspeed=config["training"]["deepspeed"],
        launch=training_launch(EVALUATION["sft"]["nodes"]),
        min_examples=None,
        seed=lambda w: derive_seed(config["seed"], "sft", f"{w.model}/{w.dataset}", 0),
    resources:
        **training_resources(EVALUATION["sft"]["nodes"]),
    log:
        f"{RESULTS}/logs/sft/{{model}}/{{dataset}}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/train.py"


rule eval_items:
    input:
        eval_items_inputs,
    output:
        benchmark=eval_items_file(),
        stats=f"{EVAL_DIR}/benchmarks/{{bench}}.stats.json",
    wildcard_constraints:
        bench="|".join(re.escape(name) for name in EVAL_BENCHMARKS) or "^$",
    params:
        entry=lambda w: EVAL_BENCHMARKS[w.bench],
    log:
        f"{RESULTS}/logs/eval_items/{{bench}}.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/eval_items.py"


rule eval_answers:
    input:
        benchmark=eval_items_file(),
        model=evaluated_model_inputs,
        preflight=preflight_gate("eval_answers"),
    output:
        shard=eval_answers_file(),
        stats=f"{EVAL_DIR}/answers/{{model}}/{{dataset}}/{{bench}}/{{shard}}.stats.json",
    wildcard_constraints:
        model="|".join(re.escape(row["label"]) for row in EVALUATION_ROWS) or "^$",
        dataset="|".join(re.escape(name) for name in [*EVALUATION["datasets"], NOT_FINE_TUNED]),
        bench="|".join(re.escape(name) for name in EVAL_BENCHMARKS) or "^$",
    params:
        model=evaluated_model,
        shards=lambda w: EVALUATION["shards"].get(w.bench, 1),
        samples=EVALUATION["samples"],
        sampling=EVALUATION["sampling"],
        seed=eval_seed,
    resources:
        **evaluated_model_gpus(),
    log:
        f"{RESULTS}/logs/eval_answers/{{model}}/{{dataset}}/{{bench}}/{{shard}}.log",
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/eval_answers.py"


rule evaluate:
    input:
        answers=all_eval_answers(),
        benchmarks=[eval_items_file(bench) for bench in EVAL_BENCHMARKS],
    output:
        scores=SCORES,
        table=SCORES_TABLE,
    params:
        rows=EVALUATION_ROWS,
        benchmarks=list(EVAL_BENCHMARKS),
        absent=ABSENT_EVAL_BENCHMARKS,
        samples=EVALUATION["samples"],
    localrule: True
    log:
        f"{RESULTS}/logs/evaluate.log",
    conda:
        "../envs/cpu.yaml"
    script:
        "../scripts/evaluate.py"
