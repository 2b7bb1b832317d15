# Stage 5a: n responses per kept question. With difficulty sampling on, the same job first draws
# the shard's questions from its scored ones (stage `sample`: a job of its own would be a few
# seconds of work around a Slurm submission).


def questions_to_answer():
    """The filter's questions, or the scored questions and the keep rates to sample them with.
    The rates are `ancient`: gathering the same rates again after one shard re-ran must not re-draw
    every shard; a change of the keep rule does (params), and the release refuses shards drawn with
    other rates."""
    if DIFFICULTY_ON:
        return {"scored": shard_file("difficulty"), "keep_rates": ancient(KEEP_RATES)}
    return {"questions": shard_file("filter")}


def sampled_questions():
    return {"sampled": shard_file("sample"), "sampled_stats": stats_file("sample")} if DIFFICULTY_ON else {}


rule respond:
    input:
        **questions_to_answer(),
        model=model_inputs(config["respond"]["model"]),
    output:
        shard=shard_file("respond"),
        stats=stats_file("respond"),
        **sampled_questions(),
    params:
        model=model_params(config["respond"]["model"]),
        n=config["respond"]["n"],
        sampling=config["respond"]["sampling"],
        seed=shard_seed("respond"),
        keep=DIFFICULTY["keep"] if DIFFICULTY_ON else None,
        sample_seed=shard_seed("sample") if DIFFICULTY_ON else None,
    resources:
        **engine_resources("respond"),
    log:
        log_file("respond"),
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/respond.py"
