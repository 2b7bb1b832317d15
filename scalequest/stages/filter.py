"""Stage 4: question filtering by language, then solvability as judged by the solver."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..answers import parse_verdict
from ..engines import Completion, Sampling, open_generator
from ..language import language_drop_reason
from ..models import ModelSpec
from ..prompts import solvability_messages
from ..records import QUESTIONS, SOLVABLE, question_columns, read_shard
from ..stats import ShardStats
from .shard_io import write_stage_outputs


def filter_shard(*, generator: str, shard: str, questions_path: str | Path, language: str,
                 judge: ModelSpec | None, sampling: Mapping[str, Any], seed: int, out: str | Path) -> ShardStats:
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
    kept = []
    for row, (reason, reply) in zip(candidates,
                                    judge_solvability(judge, [r["question"] for r in candidates], sampling, seed)):
        if reply is not None:
            stats.counters["generated_tokens"] += reply.tokens
        if reason:
            stats.questions.drop(reason)
        else:
            stats.questions.keep()
            kept.append({**row, "judge_reply": reply.text, "judge_model": judge.describe()})
    return write_stage_outputs(kept, SOLVABLE, out, stats)


def judge_solvability(judge: ModelSpec, questions: list[str], sampling: Mapping[str, Any],
                      seed: int) -> list[tuple[str | None, Completion | None]]:
    """(drop reason or None when judged solvable, the judge's reply) for each question.
    Reasons: prompt_too_long, no_verdict, unsolvable."""
    if not questions:
        return []
    with open_generator(judge, seed) as engine:
        prompts = [engine.render_chat(solvability_messages(q), add_generation_prompt=True) for q in questions]
        replies = engine.generate(prompts, Sampling.from_config(sampling, seed=seed))
    results: list[tuple[str | None, Completion | None]] = []
    for reply in replies:
        if reply is None:
            results.append(("prompt_too_long", None))
            continue
        verdict = parse_verdict(reply[0].text)
        reason = "no_verdict" if verdict is None else None if verdict else "unsolvable"
        results.append((reason, reply[0]))
    return results
