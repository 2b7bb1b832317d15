"""Benchmark items with their gold answers, for the evaluation: one Parquet file per benchmark, read
from the same source the decontamination reads (release.decontamination.benchmarks)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..answers import gold_answer
from ..decontam import BenchmarkError, load_benchmark_records
from ..records import read_shard, to_table, write_shard
from ..stats import ShardStats, stats_path, write_stats
from .records import EVAL_ITEMS


def load_items(name: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every item of a configured benchmark with its gold final answer (None where its answer field
    holds none), in file order. The entry needs `answer_field`; `answer_format` says how to read it."""
    if not entry.get("answer_field"):
        raise BenchmarkError(f"release.decontamination.benchmarks.{name}.answer_field: not set; the evaluation "
                             "needs each benchmark's gold answers")
    records = load_benchmark_records(name, entry, entry["answer_field"])
    return [{"id": f"{name}-{index}", "benchmark": name, "item": index, "question": question,
             "gold": None if text is None else gold_answer(text, entry["answer_format"])}
            for index, (question, text) in enumerate(records)]


def write_items(name: str, entry: Mapping[str, Any], out: str | Path) -> ShardStats:
    """Rule eval_items: the benchmark's items as a Parquet file and a sidecar. Every item is kept, so
    that a score is always over the whole benchmark; items without a readable gold answer are
    counted (`no_gold`) and can only be graded wrong."""
    rows = load_items(name, entry)
    stats = ShardStats("eval_items", name, "00000", None, {})
    stats.questions.keep(len(rows))
    stats.counters["no_gold"] = sum(row["gold"] is None for row in rows)
    stats.finish()
    write_shard(to_table(rows, EVAL_ITEMS), EVAL_ITEMS, out)
    write_stats(stats_path(out), stats)
    return stats


def read_items(path: str | Path) -> list[dict[str, Any]]:
    return read_shard(path, EVAL_ITEMS).to_pylist()
