"""Stage 4: question filtering by language, then solvability as judged by the solver."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..answers import parse_verdict
from ..chunks import LazyEngine, ShardChunks
from ..digests import file_digest
from ..engines import Completion, Sampling, open_generator
from ..language import language_drop_reason
from ..models import ModelSpec
from ..prompts import solvability_messages
from ..records import QUESTIONS, SOLVABLE, question_columns, read_shard
from ..stats import ShardStats
from .shard_io import write_stage_outputs


def filter_shard(*, generator: str, shard: str, questions_path: str | Path, language: str,
                 judge: ModelSpec | None, sampling: Mapping[str, Any], seed: int, chunk_size: int,
                 out: str | Path) -> ShardStats:
    """Drop questions in the wrong script, then those the judge does not call solvable.
    `judge=None` turns the solvability check off."""
    rows = question_columns(read_shard(questions_path, QUESTIONS)).to_pylist()
    stats = ShardStats("filter", generator, shard, seed, {"judge": judge.describe()} if judge else {})
    candidates = []
    for row in rows:
        reason = language_drop_reason(row["question"], language)
        if reason:
            stats.questions.drop(reason)
        else:
            candidates.append(row)
    if judge is None:
        stats.questions.keep(len(candidates))
        return write_stage_outputs([{**row, "judge_reply": None, "judge_model": None} for row in candidates],
                                   SOLVABLE, out, stats)
    with ShardChunks(out, stage="filter", generator=generator, shard=shard, chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(questions_path), "language": language}) as chunks:
        kept = []
        verdicts = judge_solvability(judge, [r["question"] for r in candidates], sampling, seed, chunks, "judge")
        for row, (reason, reply) in zip(candidates, verdicts):
            if reply is not None:
                stats.counters["generated_tokens"] += reply.tokens
            if reason:
                stats.questions.drop(reason)
            else:
                stats.questions.keep()
                kept.append({**row, "judge_reply": reply.text, "judge_model": judge.describe()})
        return write_stage_outputs(kept, SOLVABLE, out, chunks.finish(stats))


def judge_solvability(judge: ModelSpec, questions: list[str], sampling: Mapping[str, Any], seed: int,
                      chunks: ShardChunks, call: str) -> list[tuple[str | None, Completion | None]]:
    """(drop reason or None when judged solvable, the judge's reply) for each question, as the job's
    chunked call `call`. Reasons: prompt_too_long, no_verdict, unsolvable."""
    with LazyEngine(open_generator, judge, seed) as engine:
        replies = chunks.generate(engine, [solvability_messages(q) for q in questions],
                                  Sampling.from_config(sampling, seed=seed), call=call)
    results: list[tuple[str | None, Completion | None]] = []
    for reply in replies:
        if reply is None:
            results.append(("prompt_too_long", None))
            continue
        verdict = parse_verdict(reply[0].text)
        reason = "no_verdict" if verdict is None else None if verdict else "unsolvable"
        results.append((reason, reply[0]))
    return results
