"""The difficulty scorer: a regression head (one output) fine-tuned from a base model on
(question -> the solver's fail rate), evaluated on held-out labels against the mean predictor."""
from __future__ import annotations

from typing import Any, Sequence

from ..records import LABELS, read_shard
from .arguments import first_and_last, trainer_kwargs
from .checkpoints import train_resumable
from .distributed import init_distributed
from .job import TrainJob
from .qft import split_held_out


def read_labels(paths: Sequence[str]) -> list[dict[str, Any]]:
    """(question, fail_rate) rows of every label shard, in shard order."""
    return [row for path in paths for row in read_shard(path, LABELS).select(["question", "fail_rate"]).to_pylist()]


def regression_metrics(predictions: Sequence[float], labels: Sequence[float],
                       train_mean: float) -> dict[str, float | None]:
    """Held-out MSE of the scorer and of the mean predictor (the train labels' mean), and the
    Pearson correlation (None when either side is constant)."""
    import numpy as np

    predicted, truth = np.asarray(predictions, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    pearson = None
    if len(truth) > 1 and predicted.std() > 0 and truth.std() > 0:
        pearson = float(np.corrcoef(predicted, truth)[0, 1])
    return {"held_out_mse": float(np.mean((predicted - truth) ** 2)),
            "mean_predictor_mse": float(np.mean((train_mean - truth) ** 2)), "held_out_pearson": pearson}


def train_scorer(job: TrainJob) -> dict[str, Any]:
    """Fine-tune `job.base_model` with a one-output regression head on the label shards in
    `job.data`; returns metrics (held-out MSE before/after, against the mean predictor, Pearson r,
    questions cut to `max_length`). Rank 0 saves model and tokenizer to `job.output_dir`."""
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    rows = read_labels(job.data)
    train, held_out = split_held_out(rows, job.hyper["eval_fraction"], job.seed)
    # The arguments first: under ZeRO-3 they make from_pretrained build the model partitioned.
    args = TrainingArguments(**trainer_kwargs(job, evaluate=bool(held_out)))
    init_distributed(job)
    tokenizer = AutoTokenizer.from_pretrained(job.base_model, trust_remote_code=job.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_seed(job.seed)  # the new head is initialized here, before the Trainer would seed
    model = AutoModelForSequenceClassification.from_pretrained(
        job.base_model, num_labels=1, problem_type="regression", trust_remote_code=job.trust_remote_code)
    model.config.pad_token_id = tokenizer.pad_token_id
    max_length = job.hyper["max_length"]

    def dataset(part: list[dict[str, Any]]) -> Dataset:
        encoded = tokenizer([row["question"] for row in part], truncation=True, max_length=max_length)
        return Dataset.from_dict({**encoded, "labels": [float(row["fail_rate"]) for row in part]})

    truncated = sum(len(ids) > max_length for ids in tokenizer([row["question"] for row in rows])["input_ids"])
    trainer = Trainer(model=model, args=args, train_dataset=dataset(train),
                      eval_dataset=dataset(held_out) if held_out else None,
                      data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
    result = train_resumable(trainer, job)
    loss_before, loss_after = first_and_last(trainer.state.log_history, "eval_loss")
    metrics: dict[str, Any] = {"train_questions": len(train), "held_out_questions": len(held_out),
                               "truncated_questions": truncated, "train_loss": result.training_loss,
                               "steps": result.global_step, "held_out_mse_before": loss_before}
    if held_out:
        predictions = trainer.predict(dataset(held_out)).predictions.reshape(-1).tolist()
        train_mean = sum(row["fail_rate"] for row in train) / len(train)
        metrics.update(regression_metrics(predictions, [row["fail_rate"] for row in held_out], train_mean))
    trainer.save_model(job.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(job.output_dir)
    return metrics
