"""Rules qft, qpo_train and difficulty_train: one training run through the launcher (1 process,
torchrun or srun)."""
if __name__ == "__main__":
    from scalequest.rule_job import rule_job
    from scalequest.training.launcher import training_job

    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with rule_job(sm):
        training_job(kind=sm.params.kind, model=sm.params.model,
                     data=sm.input.data if isinstance(sm.input.data, str) else list(sm.input.data),
                     prompt_style=sm.params.prompt_style, hyper=sm.params.hyper, seed=sm.params.seed,
                     deepspeed=sm.params.deepspeed, min_examples=sm.params.min_examples, launch=sm.params.launch,
                     out=sm.output.model, rule=sm.rule,
                     # from the config, not a param: how often to checkpoint changes no model, so no re-run
                     checkpoint_minutes=sm.config["training"]["checkpoint_minutes"])
