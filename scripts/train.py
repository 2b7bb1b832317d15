"""Rules qft, qpo_train and difficulty_train: one training run through the launcher (1 process,
torchrun or srun)."""
if __name__ == "__main__":
    from scalequest.joblog import job_log
    from scalequest.models import ModelSpec
    from scalequest.training.enough import check_enough_data
    from scalequest.training.job import TrainJob
    from scalequest.training.launcher import Launch, train

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with job_log(sm.log[0], sm.rule, sm.output):
        base = ModelSpec.from_entry(**sm.params.model)
        data = sm.input.data if isinstance(sm.input.data, str) else list(sm.input.data)
        check_enough_data(sm.params.kind, data, sm.params.min_examples)
        job = TrainJob(kind=sm.params.kind, base_model=base.path, data=data, output_dir="",
                       prompt_style=sm.params.prompt_style, hyper=dict(sm.params.hyper), seed=sm.params.seed,
                       deepspeed=sm.params.deepspeed, trust_remote_code=base.trust_remote_code)
        train(job, sm.output.model, Launch(**sm.params.launch))
