"""SFT of a base model on question/response pairs, for the evaluation: the question (with the
solver's instruction) is the user turn, the response the assistant turn, through the model's chat
template (prompts.PLAIN_CHAT_TEMPLATE when it has none). The loss is on the response only."""
from __future__ import annotations

from typing import Any

from ..jsonl import read_rows
from ..prompts import response_messages
from .job import TrainJob
from .qft import fine_tune, split_held_out


def conversation_rows(pairs: list[dict[str, str]]) -> list[dict[str, list[dict[str, str]]]]:
    """TRL's conversational prompt/completion rows. The user turn is the one the evaluation asks
    (prompts.response_messages), so that training and scoring see the same prompt."""
    return [{"prompt": response_messages(pair["question"]),
             "completion": [{"role": "assistant", "content": pair["response"]}]} for pair in pairs]


def train_sft(job: TrainJob) -> dict[str, Any]:
    """Fine-tune `job.base_model` on the pairs file `job.data` (JSONL: question, response); returns
    metrics (held-out loss before and after). Every rank calls this; rank 0 saves the model."""
    train, held_out = split_held_out(read_rows(job.data), job.hyper["eval_fraction"], job.seed)
    metrics = fine_tune(job, train, held_out, lambda tokenizer, part: conversation_rows(part), chat=True)
    return {"train_pairs": len(train), "held_out_pairs": len(held_out), **metrics}
