# Before a run's GPU jobs, one short job per Slurm partition and environment they use checks the node it
# lands on (scalequest/preflight.py): a failure stops the run before any of them is submitted, with one
# message per problem. Every GPU rule takes its partition's report as an input (preflight_gate). Not
# retried: what it finds does not change by trying again. It runs again when the environment file, the
# models, the datasets or the partition change, not on a plain re-run.


rule preflight:
    input:
        preflight_inputs,
    output:
        PREFLIGHT,
    wildcard_constraints:
        env="|".join(PREFLIGHT_ENVS.values()),
    params:
        need=preflight_need,
        env_file=lambda w: env_digest(f"envs/{w.env}.yaml"),
    resources:
        slurm_partition=lambda w: w.partition,
        gpu=preflight_gpus,
        gpu_model=preflight_gpu_model,
        runtime=15,
        mem_mb=8000,
    retries: 0
    log:
        f"{RESULTS}/logs/preflight/{{partition}}/{{env}}.log",
    conda:
        "../envs/{env}.yaml"
    script:
        "../scripts/preflight.py"
