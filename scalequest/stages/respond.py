"""Stage 5a: n responses per question from the solver, in one request per question."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..answers import has_final_answer
from ..chunks import LazyEngine, ShardChunks
from ..digests import file_digest
from ..engines import Sampling, open_generator
from ..models import ModelSpec
from ..prompts import response_messages
from ..records import RESPONSES, SAMPLED, SOLVABLE, question_columns, read_any_shard
from ..stats import Funnel, ShardStats
from .shard_io import write_stage_outputs


def respond_shard(*, generator: str, shard: str, questions_path: str | Path, model: ModelSpec, n: int,
                  sampling: Mapping[str, Any], seed: int, chunk_size: int, out: str | Path) -> ShardStats:
    """Sample n responses per question (of a filter shard, or a sample shard when difficulty
    sampling is on); drop responses that are cut off or state no final answer, and questions left
    with none."""
    rows = question_columns(read_any_shard(questions_path, (SOLVABLE, SAMPLED))[0]).to_pylist()
    stats = ShardStats("respond", generator, shard, seed, {"responder": model.describe()},
                       responses=Funnel(unit="response"))
    kept = []
    with ShardChunks(out, stage="respond", generator=generator, shard=shard, chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(questions_path)}) as chunks:
        with LazyEngine(open_generator, model, seed) as engine:
            results = chunks.generate(engine, [response_messages(row["question"]) for row in rows],
                                      Sampling.from_config(sampling, n=n, seed=seed), call="respond")
        for row, completions in zip(rows, results):
            if completions is None:
                stats.questions.drop("prompt_too_long")
                continue
            answers = []
            for completion in completions:
                stats.counters["generated_tokens"] += completion.tokens
                if not completion.finished:
                    stats.responses.drop("truncated")
                elif not has_final_answer(completion.text):
                    stats.responses.drop("no_final_answer")
                else:
                    stats.responses.keep()
                    answers.append(completion.text.strip())
            if not answers:
                stats.questions.drop("no_valid_response")
                continue
            stats.questions.keep()
            kept.append({**row, "responses": answers, "response_model": model.describe(), "response_seed": seed})
        return write_stage_outputs(kept, RESPONSES, out, chunks.finish(stats))


def respond_job(*, generator: str, shard: str, questions_path: str | Path | None, scored_path: str | Path | None,
                keep_rates_path: str | Path | None, sample_seed: int | None, sampled_out: str | Path | None,
                model: ModelSpec, n: int, sampling: Mapping[str, Any], seed: int, chunk_size: int,
                out: str | Path) -> ShardStats:
    """One respond job. With difficulty sampling on (`scored_path` given), first draw the shard's
    questions from its scored ones with the gathered keep rates and write them to `sampled_out`
    (stage sample); then answer them (or the filter's `questions_path`)."""
    if scored_path is not None:
        from .sample import sample_shard

        sample_shard(generator=generator, shard=shard, difficulty_path=scored_path, keep_rates_path=keep_rates_path,
                     seed=sample_seed, out=sampled_out)
        questions_path = sampled_out
    return respond_shard(generator=generator, shard=shard, questions_path=questions_path, model=model, n=n,
                         sampling=sampling, seed=seed, chunk_size=chunk_size, out=out)
