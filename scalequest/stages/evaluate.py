"""Evaluation, per (model, training dataset, benchmark, shard): zero-shot chain-of-thought answers to
the benchmark's items, graded against their gold answers with the project's grader."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ..chunks import LazyEngine, ShardChunks
from ..digests import file_digest
from ..engines import Completion, Sampling, open_generator
from ..evaluation.items import read_items
from ..evaluation.records import EVAL_ANSWERS
from ..grading import answers_match, final_answer
from ..models import ModelSpec
from ..prompts import response_messages
from ..stats import ShardStats
from .shard_io import write_stage_outputs


def verdict(completion: Completion, gold: str | None) -> tuple[str | None, str]:
    """(the final answer a response states, its verdict)."""
    answer = final_answer(completion.text)
    if gold is None:
        return answer, "no_gold"
    if answer is not None and answers_match(answer, gold):
        return answer, "correct"
    if not completion.finished:
        return answer, "truncated"
    return answer, "no_answer" if answer is None else "wrong"


def majority(answers: Sequence[str | None]) -> str | None:
    """The stated answer the most responses agree on (equivalent by the grader), the earliest on a tie."""
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        group = next((g for g in groups if answers_match(answer, g[0])), None)
        if group is None:
            groups.append([answer])
        else:
            group.append(answer)
    return max(groups, key=len)[0] if groups else None  # max keeps the first of equal groups


def graded_row(item: Mapping[str, Any], completions: list[Completion] | None, *, label: str, dataset: str,
               samples: int) -> dict[str, Any]:
    """One item's record: its responses, their answers and verdicts, and the majority vote."""
    if completions is None:
        responses, answers, verdicts = [""] * samples, [None] * samples, ["prompt_too_long"] * samples
    else:
        graded = [verdict(completion, item["gold"]) for completion in completions]
        responses = [completion.text for completion in completions]
        answers, verdicts = [answer for answer, _ in graded], [v for _, v in graded]
    voted, gold = majority(answers), item["gold"]
    return {**{key: item[key] for key in ("id", "benchmark", "item", "question", "gold")}, "model": label,
            "dataset": dataset, "responses": responses, "answers": answers, "verdicts": verdicts,
            "correct": verdicts.count("correct"), "majority_answer": voted,
            "majority_correct": voted is not None and gold is not None and answers_match(voted, gold)}


def shard_items(items: list[dict[str, Any]], shard: str, shards: int) -> list[dict[str, Any]]:
    """Shard k of `shards` (contiguous, sizes differing by at most one): the count is the file's, not the plan's."""
    index = int(shard)
    if not 0 <= index < shards:
        raise ValueError(f"shard {shard} of a benchmark split in {shards}")
    return items[index * len(items) // shards:(index + 1) * len(items) // shards]


def evaluate_shard(*, items_path: str | Path, shard: str, shards: int, model: ModelSpec, label: str, dataset: str,
                   samples: int, sampling: Mapping[str, Any], seed: int, chunk_size: int,
                   out: str | Path) -> ShardStats:
    """Answer and grade one shard of a benchmark's items; every item is kept (a score is over the
    whole benchmark), the sidecar counts the responses' verdicts."""
    items = shard_items(read_items(items_path), shard, shards)
    benchmark = items[0]["benchmark"] if items else Path(items_path).stem
    stats = ShardStats("eval_answers", f"{label}/{dataset}/{benchmark}", shard, seed, {"evaluated": model.describe()})
    stats.questions.keep(len(items))
    with ShardChunks(out, stage="eval_answers", generator=f"{label}/{dataset}/{benchmark}", shard=shard,
                     chunk_size=chunk_size, settings={"seed": seed, "input": file_digest(items_path),
                                                      "shards": shards}) as chunks:
        with LazyEngine(open_generator, model, seed) as engine:
            results = chunks.generate(engine, [response_messages(item["question"]) for item in items],
                                      Sampling.from_config(sampling, n=samples, seed=seed), call="evaluate")
        rows = []
        for item, completions in zip(items, results):
            rows.append(graded_row(item, completions, label=label, dataset=dataset, samples=samples))
            stats.counters["generated_tokens"] += sum(c.tokens for c in completions or [])
            for name in rows[-1]["verdicts"]:
                stats.counters[name] += 1
        return write_stage_outputs(rows, EVAL_ANSWERS, out, chunks.finish(stats))
