"""Stage 3 from a file: a generator's questions taken from a JSONL file instead of a model."""
from __future__ import annotations

from pathlib import Path

from ..jsonl import InputFileError, read_questions
from ..records import QUESTIONS
from ..shards import question_id
from ..stats import ShardStats
from .shard_io import write_stage_outputs


def import_shard(*, generator: str, shard: str, first_index: int, count: int, questions_file: str | Path,
                 field: str, seed: int, out: str | Path) -> ShardStats:
    """Take this shard's questions from a JSONL file instead of a model (empty ones are dropped).
    Raises InputFileError on a bad line, or when the file ends before the shard does."""
    source = f"file:{Path(questions_file).name}"
    stats = ShardStats("generate", generator, shard, seed, {"generator": source})
    rows = []
    read = 0
    for index, question in read_questions(questions_file, field, first_index, first_index + count):
        read += 1
        if not question.strip():
            stats.questions.drop("empty")
            continue
        stats.questions.keep()
        rows.append({"id": question_id(generator, shard, index), "generator": generator, "shard": int(shard),
                     "question": question.strip(), "question_model": source, "question_seed": seed,
                     "difficulty": None, "gen_tokens": 0})
    if read < count:
        raise InputFileError(f"{questions_file}: holds {first_index + read} questions, but generator "
                             f"'{generator}' asks for at least {first_index + count}")
    return write_stage_outputs(rows, QUESTIONS, out, stats)
