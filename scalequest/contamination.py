"""The model-free benchmark screens over a list of questions, shared by the workflow's screen job
(stages/decontaminate.py) and the `scalequest-decontaminate` command (decontaminate_cli.py), so that
both find the same matches. The screens with models (embedding, judge) are in model_screens.py.

Per (question, benchmark), the first screen that catches it names the match:
1. `ngram`: n-gram overlap of normalized text (decontam.py) catches copies and light edits;
2. `lexical`: among the question's `top_k` nearest items (lexical.py), the best one whose numbers
   and math (signature cosine), numbers alone and whole bag (joint cosine) reach their thresholds:
   a rephrasing.
With the lexical screen on, a pair that neither catches but whose text without its numbers matches
an item closely (the `text` cosine) is a `number_variant`: the same problem with other quantities. It is reported,
and dropped only when `number_variants.drop` says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .decontam import NgramIndex, describe_source, find_overlaps, load_benchmark
from .lexical import LexicalIndex

NGRAM, LEXICAL, EMBEDDING, JUDGE, NUMBER_VARIANT = "ngram", "lexical", "embedding", "judge", "number_variant"
METHODS = (NGRAM, LEXICAL, EMBEDDING, JUDGE)  # the screens that drop, in the order a question's matches are attributed
LEXICAL_SCORES = ("signature", "numbers", "words", "joint", "text")
SCORE_DIGITS = 4  # scores are rounded, so that they print and compare the same everywhere


@dataclass(frozen=True)
class ScreenSettings:
    """The screens' settings, from the config's `release.decontamination`."""

    ngram: int
    min_overlap: float
    lexical: bool
    top_k: int
    min_signature: float
    min_numbers: float
    min_joint: float
    variant_min_text: float
    drop_variants: bool

    @classmethod
    def from_config(cls, decontamination: Mapping[str, Any]) -> "ScreenSettings":
        lexical, variants = decontamination["lexical"], decontamination["number_variants"]
        return cls(ngram=decontamination["ngram"], min_overlap=decontamination["min_overlap"],
                   lexical=lexical["enabled"], top_k=decontamination["top_k"],
                   min_signature=lexical["min_signature"], min_numbers=lexical["min_numbers"],
                   min_joint=lexical["min_joint"],
                   variant_min_text=variants["min_text"], drop_variants=variants["drop"])


@dataclass(frozen=True)
class BenchmarkItems:
    """Every configured benchmark's questions, one flat list: entry i is item `items[i]` of
    benchmark `benchmarks[i]`, with the indexes over them."""

    benchmarks: Sequence[str]
    items: Sequence[int]
    questions: Sequence[str]
    ngrams: NgramIndex
    lexical: LexicalIndex | None


def build_benchmark_items(benchmarks: Mapping[str, Mapping[str, Any]], ngram: int) -> tuple[BenchmarkItems, dict]:
    """Load every configured benchmark (config order) and index it; also returns the summary: the
    n-gram size and, per benchmark, its name, source and size."""
    names, numbers, questions, summary = [], [], [], {"ngram": ngram, "benchmarks": []}
    for name, entry in benchmarks.items():
        loaded = load_benchmark(name, entry)
        names.extend([name] * len(loaded))
        numbers.extend(range(len(loaded)))
        questions.extend(loaded)
        summary["benchmarks"].append({"name": name, "source": describe_source(entry), "items": len(loaded)})
    return BenchmarkItems(names, numbers, questions, NgramIndex.build(questions, ngram),
                          LexicalIndex.build(questions)), summary


def screen_questions(questions: Sequence[str], index: BenchmarkItems, settings: ScreenSettings) -> list[dict[str, Any]]:
    """Every match, sorted by question position then benchmark: {question (its position), benchmark,
    item, benchmark_question, method, and the method's scores}. At most one match per (question,
    benchmark): the first method's best item."""
    found: dict[tuple[int, str], dict[str, Any]] = {}
    overlaps = find_overlaps(questions, index.ngrams, settings.ngram, settings.min_overlap)
    for position, entry, shared, overlap in sorted(zip(overlaps.questions.tolist(), overlaps.items.tolist(),
                                                       overlaps.shared.tolist(), overlaps.overlap.tolist()),
                                                   key=lambda match: (match[0], -match[3], match[1])):
        add_match(found, index, position, entry, NGRAM, {"shared_ngrams": shared, "overlap": overlap})
    if index.lexical is not None and settings.lexical:
        _lexical_matches(found, questions, index, settings)
    return [found[key] for key in sorted(found)]


def _lexical_matches(found: dict[tuple[int, str], dict[str, Any]], questions: Sequence[str], index: BenchmarkItems,
                     settings: ScreenSettings) -> None:
    """Add the lexical screen's matches and the number variants, in rank order (best joint first)."""
    scores = index.lexical.nearest(questions, settings.top_k)
    rephrased = ((scores.signature >= settings.min_signature) & (scores.numbers >= settings.min_numbers)
                 & (scores.joint >= settings.min_joint))
    variant = ~rephrased & (scores.text >= settings.variant_min_text) & (scores.items >= 0)
    for method, hits in ((LEXICAL, rephrased), (NUMBER_VARIANT, variant)):
        for position, rank in zip(*np.nonzero(hits)):
            add_match(found, index, int(position), int(scores.items[position, rank]), method,
                 {name: float(getattr(scores, name)[position, rank]) for name in LEXICAL_SCORES})


def add_match(found: dict[tuple[int, str], dict[str, Any]], index: BenchmarkItems, position: int, entry: int,
         method: str, scores: Mapping[str, float | int]) -> None:
    """Record a match in `found` unless an earlier one holds this (question, benchmark)."""
    key = (position, index.benchmarks[entry])
    if key not in found:
        found[key] = {"question": position, "benchmark": key[1], "item": int(index.items[entry]),
                      "benchmark_question": index.questions[entry], "method": method,
                      **{name: round(value, SCORE_DIGITS) if isinstance(value, float) else value
                         for name, value in scores.items()}}


def drops(match: Mapping[str, Any], drop_variants: bool) -> bool:
    """Whether a match removes its question from the release (`number_variants.drop`)."""
    return match["method"] != NUMBER_VARIANT or drop_variants
