# Stage 5a: n responses per kept question. With difficulty sampling on, the same job first draws
# the shard's questions from its scored ones (stage `sample`: a job of its own would be a few
# seconds of work around a Slurm submission).


rule respond:
    input:
        **questions_to_answer(),
        model=model_inputs(config["respond"]["model"]),
        preflight=preflight_gate("respond"),
    output:
        shard=shard_file("respond"),
        stats=stats_file("respond"),
        **sampled_questions(),
    params:
        model=model_params(config["respond"]["model"]),
        n=config["respond"]["n"],
        sampling=config["respond"]["sampling"],
        seed=shard_seed("respond"),
        sample_seed=shard_seed("sample") if DIFFICULTY_ON else None,
        # Re-run trigger, not read by the job: a new keep rule re-draws every shard's sample (the rates
        # are an `ancient` input, see questions_to_answer).
        keep=DIFFICULTY["keep"] if DIFFICULTY_ON else None,
    resources:
        **engine_resources("respond"),
    log:
        log_file("respond"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/respond.py"
