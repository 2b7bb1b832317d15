"""Stage 5b: the reward model scores every (question, response); the same job then picks the best-of-n
pairs (stage best: a job of its own would only reload the scores for a selection that takes a second)."""
from __future__ import annotations

from pathlib import Path

from ..chunks import LazyEngine, ShardChunks
from ..digests import file_digest
from ..engines import open_scorer
from ..models import ModelSpec
from ..prompts import reward_messages
from ..records import RESPONSES, REWARDED, read_shard
from ..stats import Funnel, ShardStats
from .best import best_shard
from .shard_io import write_stage_outputs


def reward_shard(*, generator: str, shard: str, responses_path: str | Path, model: ModelSpec, seed: int,
                 chunk_size: int, out: str | Path) -> ShardStats:
    """Score all responses of the shard; nothing is dropped here."""
    rows = read_shard(responses_path, RESPONSES).to_pylist()
    stats = ShardStats("reward", generator, shard, seed, {"reward": model.describe()},
                       responses=Funnel(unit="response"))
    conversations = [reward_messages(row["question"], response) for row in rows for response in row["responses"]]
    with ShardChunks(out, stage="reward", generator=generator, shard=shard, chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(responses_path)}) as chunks:
        with LazyEngine(open_scorer, model, seed) as scorer:
            scores, truncated = chunks.score(scorer, conversations, call="reward")
        stats.counters["truncated_inputs"] += truncated
        position = 0
        for row in rows:
            count = len(row["responses"])
            row["scores"] = scores[position:position + count]
            row["reward_model"] = model.describe()
            position += count
        stats.questions.keep(len(rows))
        stats.responses.keep(len(conversations))
        return write_stage_outputs(rows, REWARDED, out, chunks.finish(stats))


def reward_job(*, generator: str, shard: str, responses_path: str | Path, model: ModelSpec, seed: int,
               chunk_size: int, rewarded_out: str | Path, best_out: str | Path) -> ShardStats:
    """One reward job: the shard's reward scores, then its best-of-n pairs; returns the best stage's stats."""
    reward_shard(generator=generator, shard=shard, responses_path=responses_path, model=model, seed=seed,
                 chunk_size=chunk_size, out=rewarded_out)
    return best_shard(generator=generator, shard=shard, rewarded_path=rewarded_out, out=best_out)
