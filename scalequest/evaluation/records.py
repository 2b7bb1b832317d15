"""The evaluation's record schemas: benchmark items with their gold answers, and graded answers.
(Apart from the code that writes them, so that reading them needs neither the engines nor the grader.)"""
from __future__ import annotations

import pyarrow as pa

from ..records import StageSchema

EVAL_ITEMS = StageSchema(
    "eval_items",
    pa.schema([
        pa.field("id", pa.string(), nullable=False),  # <benchmark>-<item>
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("item", pa.int32(), nullable=False),  # 0-based position in the benchmark's file or split
        pa.field("question", pa.string(), nullable=False),
        pa.field("gold", pa.string()),  # the final answer read from answer_field; null: none could be read
    ]),
)


# A response's verdict: `truncated` is a response cut off at max_tokens that is not right; `no_gold`
# an item whose gold answer could not be read (it cannot be graded right).
VERDICTS = ("correct", "wrong", "no_answer", "truncated", "no_gold", "prompt_too_long")

EVAL_ANSWERS = StageSchema(
    "eval_answers",
    pa.schema([
        pa.field("id", pa.string(), nullable=False),  # the benchmark item's: <benchmark>-<item>
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("item", pa.int32(), nullable=False),
        pa.field("model", pa.string(), nullable=False),  # the evaluated model's label
        pa.field("dataset", pa.string(), nullable=False),  # what it was fine-tuned on; "none": as it is
        pa.field("question", pa.string(), nullable=False),
        pa.field("gold", pa.string()),
        pa.field("responses", pa.list_(pa.string()), nullable=False),  # `samples` of them (1: greedy)
        pa.field("answers", pa.list_(pa.string()), nullable=False),  # each response's final answer (null: none)
        pa.field("verdicts", pa.list_(pa.string()), nullable=False),  # each response's, one of VERDICTS
        pa.field("correct", pa.int32(), nullable=False),  # responses graded correct
        pa.field("majority_answer", pa.string()),  # the answer most responses agree on (null: none stated)
        pa.field("majority_correct", pa.bool_(), nullable=False),
    ]),
)
