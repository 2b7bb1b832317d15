"""QPO's training step: DPO on (prefix, optimized question, raw question) pairs, with the QFT
model as both the starting point and the frozen reference."""
from __future__ import annotations

from typing import Any

from ..prompts import PROMPT_STYLES
from ..records import PAIRS, read_shard
from .arguments import first_and_last, trl_kwargs
from .checkpoints import train_resumable
from .distributed import init_distributed
from .job import TrainJob
from .qft import split_held_out


def preference_rows(pairs: list[dict[str, str]], prompt_style: str, eos: str) -> list[dict[str, str]]:
    """DPO rows: prompt = the user-turn prefix, chosen = the optimized question, rejected = the raw one."""
    style = PROMPT_STYLES[prompt_style]
    return [{"prompt": style.user_prefix, "chosen": style.question_completion(p["chosen"], eos),
             "rejected": style.question_completion(p["rejected"], eos)} for p in pairs]


def train_dpo(job: TrainJob) -> dict[str, Any]:
    """DPO from `job.base_model` (the QFT model); returns metrics including held-out reward
    accuracy (chosen rated above rejected) before and after. Rank 0 saves to `job.output_dir`."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    train, held_out = split_held_out(read_shard(job.data, PAIRS).select(["chosen", "rejected"]).to_pylist(),
                                     job.hyper["eval_fraction"], job.seed)
    args = DPOConfig(beta=job.hyper["beta"], loss_type=[job.hyper["loss_type"]],
                     **trl_kwargs(job, evaluate=bool(held_out)))
    init_distributed(job)
    tokenizer = AutoTokenizer.from_pretrained(job.base_model, trust_remote_code=job.trust_remote_code)

    def rows(pairs):
        return Dataset.from_list(preference_rows(pairs, job.prompt_style, tokenizer.eos_token))

    trainer = DPOTrainer(model=job.base_model, ref_model=None, args=args, processing_class=tokenizer,
                         train_dataset=rows(train), eval_dataset=rows(held_out) if held_out else None)
    result = train_resumable(trainer, job)
    accuracy_before, accuracy_after = first_and_last(trainer.state.log_history, "eval_rewards/accuracies")
    loss_before, loss_after = first_and_last(trainer.state.log_history, "eval_loss")
    metrics = {"train_pairs": len(train), "held_out_pairs": len(held_out), "train_loss": result.training_loss,
               "steps": result.global_step, "held_out_reward_accuracy_before": accuracy_before,
               "held_out_reward_accuracy_after": accuracy_after, "held_out_loss_before": loss_before,
               "held_out_loss_after": loss_after}
    trainer.save_model(job.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(job.output_dir)
    return metrics
