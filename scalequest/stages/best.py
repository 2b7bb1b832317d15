"""Stage 5c: best-of-n, one pair per question."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..records import BEST, QUESTION_FIELDS, REWARDED, read_shard
from ..stats import ShardStats
from .shard_io import write_stage_outputs


def pick_best(responses: list[str], scores: list[float]) -> tuple[str, float, float | None]:
    """The highest-scoring response (the first one on ties), its score, and its margin over
    the runner-up (None when there is only one response)."""
    if not responses or len(responses) != len(scores):
        raise ValueError(f"need one score per response, got {len(responses)} responses and {len(scores)} scores")
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    best = ranked[0]
    margin = scores[best] - scores[ranked[1]] if len(ranked) > 1 else None
    return responses[best], scores[best], margin


def best_shard(*, generator: str, shard: str, rewarded_path: str | Path, out: str | Path) -> ShardStats:
    """The best-of-n pair of every question of a rewarded shard."""
    rows = read_shard(rewarded_path, REWARDED).to_pylist()
    stats = ShardStats("best", generator, shard, None, {})
    pairs: list[dict[str, Any]] = []
    for row in rows:
        response, score, margin = pick_best(row["responses"], row["scores"])
        pairs.append({
            **{field.name: row[field.name] for field in QUESTION_FIELDS},
            "response": response, "score": score, "margin": margin, "candidates": len(row["responses"]),
            "response_model": row["response_model"], "reward_model": row["reward_model"],
        })
    stats.questions.keep(len(pairs))
    return write_stage_outputs(pairs, BEST, out, stats)
