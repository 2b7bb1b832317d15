"""Decontamination: the benchmarks' n-gram index is built once (`index_benchmarks`), then every
best shard is checked against it in its own job (`decontaminate_shard`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from ..arrays import run_starts
from ..atomic import atomic_path, write_json_atomic
from ..decontam import NgramIndex, describe_source, find_overlaps, load_benchmark
from ..records import BEST, StageSchema, read_shard, to_table, write_shard

BENCHMARK_ITEMS = StageSchema("benchmark_items", pa.schema([
    pa.field("benchmark", pa.string(), nullable=False),
    pa.field("item", pa.int64(), nullable=False),  # the question's position in the benchmark (line in its file)
    pa.field("question", pa.string(), nullable=False),
]))
MATCHES = StageSchema("matches", pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("benchmark", pa.string(), nullable=False),
    pa.field("item", pa.int64(), nullable=False),
    pa.field("benchmark_question", pa.string(), nullable=False),
    pa.field("shared_ngrams", pa.int64(), nullable=False),
    pa.field("overlap", pa.float64(), nullable=False),
]))


def index_benchmarks(*, benchmarks: Mapping[str, Mapping[str, Any]], ngram: int, items_out: str | Path,
                     index_out: str | Path, summary_out: str | Path) -> dict[str, Any]:
    """Load every benchmark; write its questions, the n-gram index over them, and a summary
    (benchmarks in config order, a list, with their source and size), which is returned."""
    rows, summary = [], {"ngram": ngram, "benchmarks": []}
    for name, entry in benchmarks.items():
        questions = load_benchmark(name, entry)
        rows.extend({"benchmark": name, "item": item, "question": question} for item, question in enumerate(questions))
        summary["benchmarks"].append({"name": name, "source": describe_source(entry), "items": len(questions)})
    items = to_table(rows, BENCHMARK_ITEMS)
    index = NgramIndex.build(items.column("question").to_pylist(), ngram)
    write_shard(items, BENCHMARK_ITEMS, items_out)
    with atomic_path(index_out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, hashes=index.hashes, items=index.items, item_sizes=index.item_sizes, ngram=ngram)
    write_json_atomic(summary_out, summary)
    return summary


def load_index(path: str | Path, ngram: int) -> NgramIndex:
    with np.load(path) as saved:
        if int(saved["ngram"]) != ngram:
            raise ValueError(f"{path}: an index of {int(saved['ngram'])}-grams, expected {ngram}-grams")
        return NgramIndex(saved["hashes"], saved["items"], saved["item_sizes"])


def decontaminate_shard(*, best_path: str | Path, items_path: str | Path, index_path: str | Path, ngram: int,
                        min_overlap: float, out: str | Path) -> pa.Table:
    """The shard's questions that match a benchmark: per question and benchmark, the item with the
    highest overlap (then the first item). Written to `out` and returned."""
    best = read_shard(best_path, BEST)
    items = read_shard(items_path, BENCHMARK_ITEMS)
    overlaps = find_overlaps(best.column("question").to_pylist(), load_index(index_path, ngram), ngram, min_overlap)
    found = pa.table({
        "id": best.column("id").take(overlaps.questions),
        "benchmark": items.column("benchmark").take(overlaps.items),
        "item": items.column("item").take(overlaps.items),
        "benchmark_question": items.column("question").take(overlaps.items),
        "shared_ngrams": overlaps.shared,
        "overlap": overlaps.overlap,
    }).sort_by([("id", "ascending"), ("benchmark", "ascending"), ("overlap", "descending"), ("item", "ascending")])
    first = run_starts(*(np.asarray(found.column(name).to_pylist(), dtype=object) for name in ("id", "benchmark")))
    matches = found.filter(pa.array(first)).cast(MATCHES.schema)
    write_shard(matches, MATCHES, out)
    return matches

