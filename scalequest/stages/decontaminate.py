"""Decontamination: the benchmarks' n-gram and lexical indexes are built once (`index_benchmarks`),
then every best shard is screened against them in its own job (`decontaminate_shard`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from ..atomic import atomic_path, write_json_atomic
from ..contamination import BenchmarkItems, ScreenSettings, build_benchmark_items, screen_questions
from ..decontam import NgramIndex
from ..lexical import LexicalIndex
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
    pa.field("method", pa.string(), nullable=False),  # contamination.METHODS or number_variant
    pa.field("shared_ngrams", pa.int64()),  # ngram: n-grams in common
    pa.field("overlap", pa.float64()),  # ngram: shared / the smaller of the two n-gram sets
    pa.field("signature", pa.float64()),  # lexical, number_variant: cosine of numbers and math (lexical.py)
    pa.field("numbers", pa.float64()),  # lexical, number_variant: cosine of the numbers alone
    pa.field("words", pa.float64()),  # lexical, number_variant: cosine of content words
    pa.field("joint", pa.float64()),  # lexical, number_variant: cosine of all features
    pa.field("text", pa.float64()),  # lexical, number_variant: cosine of all features but the numbers
    pa.field("cosine", pa.float64()),  # embedding (and a judge's embedding candidate): the embeddings' cosine
    pa.field("judge_reply", pa.string()),  # judge: the model's reply (its last line holds the verdict)
]))
MODEL_MATCHES = StageSchema("model_matches", MATCHES.schema)  # the same records, from the model_screen job


def index_benchmarks(*, benchmarks: Mapping[str, Mapping[str, Any]], ngram: int, items_out: str | Path,
                     index_out: str | Path, lexical_out: str | Path, summary_out: str | Path) -> dict[str, Any]:
    """Load every benchmark; write its questions, the n-gram index over them, the lexical indexes (one
    per benchmark, in one file: write_lexical) and a summary (benchmarks in config order, a list, with
    their source and size), which is returned."""
    loaded, summary = build_benchmark_items(benchmarks, ngram)
    items = pa.table({"benchmark": loaded.benchmarks, "item": loaded.items, "question": loaded.questions},
                     schema=BENCHMARK_ITEMS.schema)
    write_shard(items, BENCHMARK_ITEMS, items_out)
    with atomic_path(index_out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, hashes=loaded.ngrams.hashes, items=loaded.ngrams.items, item_sizes=loaded.ngrams.item_sizes,
                 ngram=ngram)
    write_lexical(lexical_out, loaded.lexical)
    write_json_atomic(summary_out, summary)
    return summary


def load_index(path: str | Path, ngram: int) -> NgramIndex:
    with np.load(path) as saved:
        if int(saved["ngram"]) != ngram:
            raise ValueError(f"{path}: an index of {int(saved['ngram'])}-grams, expected {ngram}-grams")
        return NgramIndex(saved["hashes"], saved["items"], saved["item_sizes"])


def write_lexical(path: str | Path, indexes: Mapping[str, LexicalIndex]) -> None:
    """The benchmarks' lexical indexes in one .npz: `benchmarks` (names, in config order), then per
    benchmark number n its section, arrays `n.vocabulary`, `n.idf`, ... (LexicalIndex.ARRAYS)."""
    arrays = {"benchmarks": np.array(list(indexes), dtype=str)}
    for number, index in enumerate(indexes.values()):
        arrays.update({f"{number}.{name}": array for name, array in index.arrays().items()})
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_lexical(path: str | Path) -> dict[str, LexicalIndex]:
    """The lexical indexes by benchmark, as write_lexical wrote them."""
    with np.load(path) as saved:
        if "benchmarks" not in saved.files:
            raise ValueError(f"{path}: a lexical index of an older version (one over all benchmarks, not one per "
                             "benchmark): delete it, and the run makes it again (rule benchmark_index)")
        return {name: LexicalIndex(saved[f"{number}.vocabulary"].tolist(),
                                   *(saved[f"{number}.{array}"] for array in LexicalIndex.ARRAYS[1:]))
                for number, name in enumerate(saved["benchmarks"].tolist())}


def load_benchmark_items(*, items_path: str | Path, index_path: str | Path, lexical_path: str | Path,
                         ngram: int) -> BenchmarkItems:
    """The benchmark questions and their indexes, as written by `index_benchmarks`."""
    items = read_shard(items_path, BENCHMARK_ITEMS)
    return BenchmarkItems(items.column("benchmark").to_pylist(), items.column("item").to_pylist(),
                          items.column("question").to_pylist(), load_index(index_path, ngram),
                          read_lexical(lexical_path))


def decontaminate_shard(*, best_path: str | Path, benchmarks: BenchmarkItems, settings: ScreenSettings,
                        out: str | Path) -> pa.Table:
    """The shard's questions that match a benchmark (contamination.py: at most one match per
    question and benchmark). Written to `out` and returned."""
    best = read_shard(best_path, BEST)
    ids = best.column("id").to_pylist()
    found = screen_questions(best.column("question").to_pylist(), benchmarks, settings)
    rows = [{"id": ids[match["question"]], **{name: match.get(name) for name in MATCHES.columns[1:]}}
            for match in found]
    matches = to_table(rows, MATCHES)
    write_shard(matches, MATCHES, out)
    return matches
