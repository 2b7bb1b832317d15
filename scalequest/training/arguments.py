"""The Trainer arguments shared by QFT and DPO, from a job's hyper-parameters."""
from __future__ import annotations

from typing import Any

from .job import TrainJob


def trl_kwargs(job: TrainJob, *, evaluate: bool) -> dict[str, Any]:
    """Keyword arguments common to TRL's SFTConfig and DPOConfig: the Trainer's, plus the
    sequence length and how TRL loads the model from its path."""
    return {**trainer_kwargs(job, evaluate=evaluate), "max_length": job.hyper["max_length"],
            "model_init_kwargs": {"trust_remote_code": job.trust_remote_code}}


def trainer_kwargs(job: TrainJob, *, evaluate: bool) -> dict[str, Any]:
    """Keyword arguments of transformers' TrainingArguments. With `evaluate`, the held-out set is
    evaluated before the first step and after each epoch (inside train(): a separate evaluate()
    before train() leaves DeepSpeed without its training engine).

    Checkpoints are saved in `job.checkpoints` (training/checkpoints.py), the model in `job.output_dir`.
    On a machine without CUDA, `use_cpu` keeps every rank on one shared model (without it, each
    rank silently trains its own copy) and bf16 is turned off."""
    import torch

    hyper, cuda = job.hyper, torch.cuda.is_available()
    evaluate_first = evaluate and not job.resume_from  # a resumed run has its first evaluation in its state
    return {
        "output_dir": job.checkpoints or job.output_dir,  # the checkpoints'; the model is saved to job.output_dir
        "num_train_epochs": hyper["epochs"],
        "max_steps": hyper.get("max_steps", -1),
        "learning_rate": hyper["learning_rate"],
        "lr_scheduler_type": hyper["lr_scheduler"],
        "warmup_steps": hyper["warmup"],
        "per_device_train_batch_size": hyper["per_device_batch_size"],
        "per_device_eval_batch_size": hyper["per_device_batch_size"],
        "gradient_accumulation_steps": hyper["gradient_accumulation_steps"],
        "bf16": bool(hyper["bf16"]) and cuda,
        "use_cpu": not cuda,
        "deepspeed": job.deepspeed_config(),
        "seed": job.seed,
        "data_seed": job.seed,
        "logging_steps": hyper.get("logging_steps", 10),
        "logging_first_step": True,
        "save_strategy": "no",  # checkpoints go by wall clock and signals (training/checkpoints.py)
        "eval_strategy": "epoch" if evaluate else "no",
        "eval_on_start": evaluate_first,
        "report_to": "none",
    }


def first_and_last(log_history: list[dict[str, Any]], key: str) -> tuple[float | None, float | None]:
    """The first and last logged values of `key` (e.g. eval_loss before and after training)."""
    values = [entry[key] for entry in log_history if key in entry]
    return (values[0], values[-1]) if values else (None, None)
