"""QFT: supervised fine-tuning of a solver on questions alone, so that given the chat prefix
that opens a user turn, it writes a question. The prefix is masked from the loss."""
from __future__ import annotations

import random
from typing import Any, Callable

from ..prompts import PLAIN_CHAT_TEMPLATE, PROMPT_STYLES
from ..seeds import read_seeds
from .arguments import first_and_last, trl_kwargs
from .checkpoints import train_resumable
from .distributed import init_distributed
from .job import TrainJob


def split_held_out(rows: list, fraction: float, seed: int) -> tuple[list, list]:
    """A seeded (train, held-out) split; held-out gets round(fraction × n) rows, at least 1 when
    fraction > 0 and there are 2 or more rows."""
    if fraction <= 0 or len(rows) < 2:
        return rows, []
    count = min(len(rows) - 1, max(1, round(fraction * len(rows))))
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:count])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def question_rows(questions: list[str], prompt_style: str, eos: str) -> list[dict[str, str]]:
    """Prompt/completion rows: TRL masks the prompt (the user-turn prefix) from the loss."""
    style = PROMPT_STYLES[prompt_style]
    return [{"prompt": style.user_prefix, "completion": style.question_completion(q, eos)} for q in questions]


def train_qft(job: TrainJob) -> dict[str, Any]:
    """Fine-tune `job.base_model` on the seed questions; returns metrics (held-out loss before
    and after). Every rank calls this; rank 0 saves model and tokenizer to `job.output_dir`."""
    questions = [row["question"] for row in read_seeds(job.data)]
    train, held_out = split_held_out(questions, job.hyper["eval_fraction"], job.seed)
    metrics = fine_tune(job, train, held_out,
                        lambda tokenizer, part: question_rows(part, job.prompt_style, tokenizer.eos_token))
    return {"train_questions": len(train), "held_out_questions": len(held_out), **metrics}


def fine_tune(job: TrainJob, train: list, held_out: list, rows: Callable[[Any, list], list[dict]], *,
              chat: bool = False) -> dict[str, Any]:
    """TRL's SFT of `job.base_model` on prompt/completion rows (`rows(tokenizer, examples)`; the prompt is
    masked from the loss), the held-out loss logged before and after; rank 0 saves model and tokenizer.
    With `chat` (rows of messages), a tokenizer without a chat template gets prompts.PLAIN_CHAT_TEMPLATE,
    saved with the model."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(packing=job.hyper["packing"], completion_only_loss=True,
                     **trl_kwargs(job, evaluate=bool(held_out)))
    init_distributed(job)
    tokenizer = AutoTokenizer.from_pretrained(job.base_model, trust_remote_code=job.trust_remote_code)
    if chat and not tokenizer.chat_template:
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    trainer = SFTTrainer(
        model=job.base_model, args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list(rows(tokenizer, train)),
        eval_dataset=Dataset.from_list(rows(tokenizer, held_out)) if held_out else None,
    )
    result = train_resumable(trainer, job)
    before, after = first_and_last(trainer.state.log_history, "eval_loss")
    trainer.save_model(job.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(job.output_dir)
    return {"train_loss": result.training_loss, "steps": result.global_step, "held_out_loss_before": before,
            "held_out_loss_after": after}
