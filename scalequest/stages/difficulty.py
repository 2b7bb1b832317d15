"""Stage 4c, difficulty, on the GPU: fail-rate labels on the seed questions (`label_shard`) and
scores for every question that passed the filters (`score_shard`). Keep rates and sampling, which
need neither engines nor grader, are in stages/sample.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa

from ..answers import gold_answer
from ..chunks import LazyEngine, ShardChunks
from ..digests import file_digest
from ..engines import Sampling, open_generator, open_scorer
from ..grading import gold_drop_reason, grade
from ..models import ModelSpec
from ..prompts import response_messages
from ..records import LABELS, SCORED, SOLVABLE, question_columns, read_shard
from ..seeds import read_seeds
from ..stats import Funnel, ShardStats
from .shard_io import write_stage_outputs, write_stage_table

LABEL_GENERATOR = "seeds"  # the generator name label shards carry in their sidecars


def label_shard(*, part: str, seeds_path: str | Path, first: int, count: int, solver: ModelSpec, k: int,
                sampling: Mapping[str, Any], seed: int, chunk_size: int, out: str | Path) -> ShardStats:
    """The solver answers seed questions [first, first + count) `k` times each; a question's fail
    rate is the share of answers that are not judged equal to its gold answer (cut off and
    answerless ones included). Questions without a usable gold answer are dropped and counted."""
    seeds = read_seeds(seeds_path)[first:first + count]
    stats = ShardStats("difficulty_labels", LABEL_GENERATOR, part, seed, {"solver": solver.describe()},
                       responses=Funnel(unit="response"))
    graded = []
    for offset, row in enumerate(seeds):
        reason = "no_gold" if row["answer"] is None else gold_drop_reason(row["answer"], row["answer_format"])
        if reason:
            stats.questions.drop(reason)
        else:
            graded.append((first + offset, {**row, "gold": gold_answer(row["answer"], row["answer_format"])}))
    with ShardChunks(out, stage="difficulty_labels", generator=LABEL_GENERATOR, shard=part, chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(seeds_path), "first": first}) as chunks:
        with LazyEngine(open_generator, solver, seed) as engine:
            results = chunks.generate(engine, [response_messages(row["question"]) for _, row in graded],
                                      Sampling.from_config(sampling, n=k, seed=seed), call="labels")
        labels = []
        for (index, row), completions in zip(graded, results):
            if completions is None:
                stats.questions.drop("prompt_too_long")
                continue
            correct = 0
            for completion in completions:
                stats.counters["generated_tokens"] += completion.tokens
                outcome = grade(completion.text, row["gold"]) if completion.finished else "truncated"
                stats.counters[f"answers_{outcome}"] += 1
                stats.responses.keep()
                correct += outcome == "correct"
            stats.questions.keep()
            labels.append({"id": f"seeds-{index}", "source": row["source"], "question": row["question"],
                           "gold": row["gold"], "correct": correct, "samples": len(completions),
                           "fail_rate": 1.0 - correct / len(completions), "solver_model": solver.describe()})
        return write_stage_outputs(labels, LABELS, out, chunks.finish(stats))


def score_shard(*, generator: str, shard: str, questions_path: str | Path, scorer: ModelSpec, seed: int,
                chunk_size: int, out: str | Path) -> ShardStats:
    """The scorer's predicted fail rate for every question of a filter shard (nothing is dropped;
    questions longer than the scorer's context are cut and counted as `truncated_inputs`)."""
    table = question_columns(read_shard(questions_path, SOLVABLE))
    stats = ShardStats("difficulty", generator, shard, seed, {"difficulty": scorer.describe()})
    with ShardChunks(out, stage="difficulty", generator=generator, shard=shard, chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(questions_path)}) as chunks:
        with LazyEngine(open_scorer, scorer, seed) as engine:
            scores, truncated = chunks.score(engine, table.column("question").to_pylist(), call="score")
        stats.counters["truncated_inputs"] += truncated
        table = table.set_column(table.schema.get_field_index("difficulty"), "difficulty",
                                 pa.array(scores, pa.float64()))
        table = table.append_column("difficulty_model", pa.array([scorer.describe()] * table.num_rows, pa.string()))
        stats.questions.keep(table.num_rows)
        return write_stage_table(table.cast(SCORED.schema), SCORED, out, chunks.finish(stats))
