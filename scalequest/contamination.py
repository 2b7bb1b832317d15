"""The model-free benchmark screens over a list of questions, shared by the workflow's screen job
(stages/decontaminate.py) and the `scalequest-decontaminate` command (decontaminate_cli.py), so that
both find the same matches. The screens with models (embedding, judge) are in model_screens.py.

Per (question, benchmark), the first screen that catches it names the match:
1. `ngram`: n-gram overlap of normalized text (decontam.py) catches copies and light edits;
2. `lexical`: among the question's `top_k` nearest items of the benchmark (lexical.py, weighted
   over that benchmark's items alone), the best one whose numbers and math (signature cosine),
   numbers alone and whole bag (joint cosine) reach their thresholds: a rephrasing.
So a question's verdict against a benchmark depends on the question and that benchmark alone.
With the lexical screen on, a pair that neither catches but whose text without its numbers matches
an item closely (the `text` cosine) is a `number_variant`: the same problem with other quantities. It is reported,
and dropped only when `number_variants.drop` says so.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Mapping, Sequence, TypeVar

import numpy as np

from .decontam import NgramIndex, describe_source, find_overlaps, load_benchmark
from .lexical import Counts, LexicalIndex, Scores

NGRAM, LEXICAL, EMBEDDING, JUDGE, NUMBER_VARIANT = "ngram", "lexical", "embedding", "judge", "number_variant"
METHODS = (NGRAM, LEXICAL, EMBEDDING, JUDGE)  # the screens that drop, in the order a question's matches are attributed
LEXICAL_SCORES = ("signature", "numbers", "words", "joint", "text")
SCORE_DIGITS = 4  # scores are rounded, so that they print and compare the same everywhere
Found = TypeVar("Found")  # a search's results, e.g. lexical.Scores


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
    benchmark `benchmarks[i]`, each benchmark's items together in config order, with the indexes
    over them. The n-gram index is one (a pair's overlap is the pair's alone); the lexical ones are
    one per benchmark, so that its weights, and so a verdict against it, never depend on another."""

    benchmarks: Sequence[str]
    items: Sequence[int]
    questions: Sequence[str]
    ngrams: NgramIndex
    lexical: Mapping[str, LexicalIndex]  # by benchmark, in config order

    @cached_property
    def spans(self) -> dict[str, slice]:
        """Each benchmark's entries, in config order: its item i is entry `spans[name].start + i`."""
        starts: dict[str, int] = {}
        for entry, name in enumerate(self.benchmarks):
            starts.setdefault(name, entry)
        stops = list(starts.values())[1:] + [len(self.benchmarks)]
        return {name: slice(start, stop) for (name, start), stop in zip(starts.items(), stops)}

    def nearest(self, questions: Sequence[str], k: int) -> Scores:
        """Per benchmark, each question's k nearest items by its own lexical index (lexical.py), side by side."""
        counted = Counts.of(questions)  # once, weighed by every benchmark's index
        return self.side_by_side([self.lexical[name].nearest(counted, k) for name in self.spans])

    def side_by_side(self, found: Sequence[Found]) -> Found:
        """One search's results per benchmark (config order) as one: dataclasses of [questions, k] arrays
        whose `items` are item numbers in the benchmark (-1: none), their columns put side by side, with
        `items` made entries of this list. A benchmark's top k is then its own, whatever the others hold."""
        for part, span in zip(found, self.spans.values()):
            part.items[part.items >= 0] += span.start
        return type(found[0])(*(np.concatenate([getattr(part, field.name) for part in found], axis=1)
                                for field in fields(found[0])))


def build_benchmark_items(benchmarks: Mapping[str, Mapping[str, Any]], ngram: int) -> tuple[BenchmarkItems, dict]:
    """Load every configured benchmark (config order) and index it; also returns the summary: the
    n-gram size and, per benchmark, its name, source and size."""
    names, numbers, questions, lexical = [], [], [], {}
    summary: dict[str, Any] = {"ngram": ngram, "benchmarks": []}
    for name, entry in benchmarks.items():
        loaded = load_benchmark(name, entry)
        names.extend([name] * len(loaded))
        numbers.extend(range(len(loaded)))
        questions.extend(loaded)
        lexical[name] = LexicalIndex.build(loaded)
        summary["benchmarks"].append({"name": name, "source": describe_source(entry), "items": len(loaded)})
    return BenchmarkItems(names, numbers, questions, NgramIndex.build(questions, ngram), lexical), summary


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
    if settings.lexical:
        _lexical_matches(found, questions, index, settings)
    return [found[key] for key in sorted(found)]


def _lexical_matches(found: dict[tuple[int, str], dict[str, Any]], questions: Sequence[str], index: BenchmarkItems,
                     settings: ScreenSettings) -> None:
    """Add the lexical screen's matches and the number variants, in rank order (best joint first)."""
    scores = index.nearest(questions, settings.top_k)
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
