"""Benchmark contamination by n-gram overlap on normalized text.

A question matches a benchmark item when the share of shared n-grams reaches `min_overlap`,
counted over the smaller of the two n-gram sets: a question that holds a whole benchmark item
(or is a large piece of one) matches, while two questions that merely share a stock phrase do not.
Texts shorter than n tokens are one n-gram of all their tokens, so a short item matches a
question equal to it after normalization.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .arrays import concatenated_ranges
from .jsonl import InputFileError
from .ngrams import ngram_sets
from .sources import SourceError, load_source_with_answers


class BenchmarkError(ValueError):
    """A configured benchmark cannot be read; the message names the config key and the file or hub id."""


def benchmarks_in_use(benchmarks: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, dict], dict[str, str]]:
    """(used, absent): the configured benchmarks with environment variables in each `path` expanded,
    and the `optional` ones whose file does not exist, by name with their path. A missing file of a
    benchmark that is not optional stays in `used`, so that the run stops on it naming the path."""
    used, absent = {}, {}
    for name, entry in benchmarks.items():
        entry = {**entry, "path": os.path.expandvars(entry["path"])} if entry.get("path") else dict(entry)
        if entry.get("optional") and entry.get("path") and not entry.get("build") and not os.path.exists(entry["path"]):
            absent[name] = entry["path"]
        else:
            used[name] = entry
    return used, absent


GOLD_KEYS = ("answer_field", "answer_format")  # read by the evaluation only


def question_sources(benchmarks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """The benchmark entries as the decontamination reads them, without the evaluation's gold-answer keys:
    setting those re-runs none of its jobs."""
    return {name: {key: value for key, value in entry.items() if key not in GOLD_KEYS}
            for name, entry in benchmarks.items()}


def load_benchmark(name: str, entry: Mapping[str, Any]) -> list[str]:
    """Every question of a configured benchmark, in file order. A local `path` is read when set
    (offline runs, tests); otherwise `hub` is loaded with `datasets` (its `subset` and `split`).
    BenchmarkError for a benchmark without questions: screening against nothing would pass everything."""
    questions = [question for question, _ in load_benchmark_records(name, entry)]
    if not questions:
        raise BenchmarkError(f"release.decontamination.benchmarks.{name}: {describe_source(entry)} holds no "
                             f"questions (an empty file?): screening against it would pass every question. Give it "
                             f"the benchmark's items, or remove {name} from release.decontamination.benchmarks")
    return questions


def load_benchmark_records(name: str, entry: Mapping[str, Any],
                           answer_field: str | None = None) -> list[tuple[str, str | None]]:
    """(question, the text of `answer_field`, or None) of every item of a configured benchmark, in file
    order; read as load_benchmark reads its questions. BenchmarkError names the config key."""
    key = f"release.decontamination.benchmarks.{name}"
    source = ({"path": entry["path"], "field": entry["field"]} if entry.get("path")
              else {k: v for k, v in entry.items() if k not in GOLD_KEYS})
    if answer_field:
        source["answer_field"] = answer_field
    try:
        return load_source_with_answers({**source, "name": name})
    except FileNotFoundError as err:
        raise BenchmarkError(f"{key}.path: {err.filename}: no such file") from None
    except IsADirectoryError as err:
        raise BenchmarkError(f"{key}.path: {err.filename} is a folder: give the benchmark's JSONL file") from None
    except (InputFileError, SourceError, OSError) as err:
        raise BenchmarkError(f"{key}: {err}") from None


def describe_source(entry: Mapping[str, Any]) -> str:
    """Where a benchmark's questions come from, for the card."""
    if entry.get("path"):
        return f"{entry['path']} ({entry['field']})"
    subset = f"/{entry['subset']}" if entry.get("subset") else ""
    return f"{entry['hub']}{subset} [{entry['split']}] ({entry['field']})"


@dataclass(frozen=True)
class NgramIndex:
    """Every item's unique n-grams, sorted by hash, with the item each belongs to."""

    hashes: np.ndarray  # uint64, sorted
    items: np.ndarray  # int64 item number, aligned with `hashes`
    item_sizes: np.ndarray  # unique n-grams per item

    @classmethod
    def build(cls, texts: Sequence[str], n: int) -> "NgramIndex":
        sets = ngram_sets(texts, n)
        items = np.repeat(np.arange(len(texts), dtype=np.int64), sets.counts)
        order = np.argsort(sets.hashes, kind="stable")
        return cls(sets.hashes[order], items[order], sets.counts)


@dataclass(frozen=True)
class Overlaps:
    """Question-item pairs at or above the overlap threshold."""

    questions: np.ndarray  # question number
    items: np.ndarray  # item number in the index
    shared: np.ndarray  # shared n-grams
    overlap: np.ndarray  # shared / min(question n-grams, item n-grams)


def find_overlaps(questions: Sequence[str], index: NgramIndex, n: int, min_overlap: float) -> Overlaps:
    """Every (question, item) pair whose overlap reaches `min_overlap`, sorted by question then item."""
    sets = ngram_sets(questions, n)
    sizes, hashes = sets.counts, sets.hashes
    docs = np.repeat(np.arange(len(questions), dtype=np.int64), sizes)
    low = np.searchsorted(index.hashes, hashes, side="left")
    hits = np.searchsorted(index.hashes, hashes, side="right") - low
    # One entry per (question n-gram, index entry with that hash): an n-gram can be in several items.
    pairs = np.repeat(docs, hits) * len(index.item_sizes) + index.items[concatenated_ranges(low, hits)]
    pairs, shared = np.unique(pairs, return_counts=True)
    question, item = np.divmod(pairs, len(index.item_sizes))
    overlap = shared / np.maximum(1, np.minimum(sizes[question], index.item_sizes[item]))
    keep = overlap >= min_overlap
    return Overlaps(question[keep], item[keep], shared[keep], overlap[keep])
