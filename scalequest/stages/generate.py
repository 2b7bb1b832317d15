"""Stage 3: question synthesis. The generator continues its user-turn prefix with a question.
(Questions taken from a file instead: stages/import_questions.py, which needs no engine.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..chunks import LazyEngine, ShardChunks
from ..engines import Completion, Sampling, open_generator
from ..models import ModelSpec
from ..prompts import PROMPT_STYLES
from ..records import QUESTIONS
from ..shards import question_id
from ..stats import ShardStats
from .shard_io import write_stage_outputs


def question_drop_reason(completion: Completion) -> str | None:
    """Why a sampled question is unusable, or None."""
    if not completion.finished:
        return "truncated"
    text = completion.text.strip()
    if not text:
        return "empty"
    if "\ufffd" in text:
        return "undecodable"  # the model emitted bytes that are not valid UTF-8
    return None


def generate_shard(*, generator: str, shard: str, first_index: int, count: int, model: ModelSpec,
                   prompt_style: str, sampling: Mapping[str, Any], seed: int, chunk_size: int, out: str | Path,
                   stage: str = "generate") -> ShardStats:
    """Sample `count` questions (generator-wide indices from `first_index`) and write the kept ones
    (`stage`: generate, or qpo_sample for the questions QPO rewrites)."""
    style = PROMPT_STYLES[prompt_style]
    stats = ShardStats(stage, generator, shard, seed, {"generator": model.describe()})
    with ShardChunks(out, stage=stage, generator=generator, shard=shard, chunk_size=chunk_size,
                     settings={"seed": seed}) as chunks:
        with LazyEngine(open_generator, model, seed) as engine:
            results = chunks.generate(engine, [style.user_prefix] * count,
                                      Sampling.from_config(sampling, stop=style.stop, seed=seed), call="generate")
        rows = []
        for offset, result in enumerate(results):
            if result is None:
                stats.questions.drop("prompt_too_long")
                continue
            completion = result[0]
            stats.counters["generated_tokens"] += completion.tokens
            reason = question_drop_reason(completion)
            if reason:
                stats.questions.drop(reason)
                continue
            stats.questions.keep()
            rows.append({
                "id": question_id(generator, shard, first_index + offset), "generator": generator,
                "shard": int(shard), "question": completion.text.strip(), "question_model": model.describe(),
                "question_seed": seed, "difficulty": None, "gen_tokens": completion.tokens,
            })
        return write_stage_outputs(rows, QUESTIONS, out, chunks.finish(stats))
