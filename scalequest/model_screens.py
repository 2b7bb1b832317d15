"""The benchmark screens with models, after the model-free ones (contamination.py), shared by the
workflow's model_screen job (stages/model_screen.py) and the scalequest-decontaminate command:

- `embedding`: every question and benchmark item embedded by a model; a question matches one of
  its `top_k` nearest items of a benchmark (cosine) at or above `embedding.min_cosine`;
- `judge`: the candidates no screen caught, items among the question's top k of their benchmark
  whose lexical joint cosine (or embedding cosine) reaches the judge's lower thresholds, the best
  `per_question` of them per benchmark, each put to a model as "are these the same problem?"; a Yes
  (parse_verdict, as strict as the solvability judge) is a match.
Top k and `per_question` count per benchmark, so that the candidates against one benchmark never
depend on another's items.

The models are reached through callables, so that the job can checkpoint their calls in chunks and
the command can call the engines directly: `Embed(texts, call)` returns unit vectors as rows,
`Judge(conversations, call)` one Completion (None: did not fit) per conversation.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .answers import parse_verdict
from .contamination import EMBEDDING, JUDGE, BenchmarkItems, add_match
from .engines import Completion
from .prompts import same_problem_messages

Embed = Callable[[Sequence[str], str], np.ndarray]
Judge = Callable[[list[list[dict[str, str]]], str], list[Completion | None]]
COSINE_BLOCK = 1024  # questions whose cosines with every item are held at once


@dataclass(frozen=True)
class ModelScreenSettings:
    """The embedding and judge screens' settings, from the config's `release.decontamination`."""

    top_k: int
    min_cosine: float
    judge_min_joint: float
    judge_min_cosine: float
    judge_per_question: int

    @classmethod
    def from_config(cls, decontamination: Mapping[str, Any]) -> "ModelScreenSettings":
        judge = decontamination["judge"]
        return cls(top_k=decontamination["top_k"], min_cosine=decontamination["embedding"]["min_cosine"],
                   judge_min_joint=judge["min_joint"], judge_min_cosine=judge["min_cosine"],
                   judge_per_question=judge["per_question"])


@dataclass
class Nearest:
    """Per question its top k items by a score (-1 where there are fewer), best first."""

    items: np.ndarray  # int64 [questions, k]
    scores: np.ndarray  # float64 [questions, k]


def nearest_by_embedding(questions: np.ndarray, items: np.ndarray, k: int) -> Nearest:
    """The k items with the highest cosine per question (unit vectors as rows); ties by item number."""
    k = max(1, min(k, len(items)))
    found = Nearest(np.full((len(questions), k), -1, dtype=np.int64), np.zeros((len(questions), k)))
    for start in range(0, len(questions), COSINE_BLOCK):
        cosines = questions[start:start + COSINE_BLOCK] @ items.T
        top = np.argpartition(-cosines, k - 1, axis=1)[:, :k] if k < len(items) else np.tile(
            np.arange(len(items)), (len(cosines), 1))
        picked = np.take_along_axis(cosines, top, axis=1)
        order = np.lexsort((top, -picked), axis=1)
        found.items[start:start + len(cosines)] = np.take_along_axis(top, order, axis=1)
        found.scores[start:start + len(cosines)] = np.take_along_axis(picked, order, axis=1)
    return found


def embedding_matches(questions: Sequence[str], index: BenchmarkItems, settings: ModelScreenSettings,
                      caught: Iterable[tuple[int, str]], embed: Embed) -> tuple[list[dict[str, Any]], Nearest]:
    """The embedding screen's matches for the (question, benchmark) pairs not `caught` yet, and every
    question's nearest items by embedding (for the judge's candidates), the top k of each benchmark."""
    items = np.asarray(embed(index.questions, "embed-benchmarks"), dtype=np.float64).reshape(len(index.questions), -1)
    vectors = np.asarray(embed(questions, "embed"), dtype=np.float64).reshape(len(questions), -1)
    nearest = index.side_by_side([nearest_by_embedding(vectors, items[span], settings.top_k)
                                  for span in index.spans.values()])
    found: dict[tuple[int, str], dict[str, Any]] = {key: {} for key in caught}  # empty: held by an earlier screen
    for position, rank in zip(*np.nonzero((nearest.scores >= settings.min_cosine) & (nearest.items >= 0))):
        add_match(found, index, int(position), int(nearest.items[position, rank]), EMBEDDING,
                  {"cosine": float(nearest.scores[position, rank])})
    return [match for match in found.values() if match], nearest


def judge_candidates(questions: Sequence[str], index: BenchmarkItems, settings: ModelScreenSettings,
                     caught: Iterable[tuple[int, str]], embedded: Nearest | None) -> list[tuple[int, int, dict]]:
    """(question, benchmark entry, its scores) to put to the judge: per question and benchmark that no
    screen matched yet, the best `per_question` items reaching the judge's thresholds (per benchmark, so
    that another benchmark's candidates never crowd its own out)."""
    lexical = index.nearest(questions, settings.top_k)
    done = set(caught)
    candidates = []
    for position in range(len(questions)):
        scored: dict[int, dict[str, float]] = {}
        for rank in np.flatnonzero((lexical.joint[position] >= settings.judge_min_joint)
                                   & (lexical.items[position] >= 0)):
            scored.setdefault(int(lexical.items[position, rank]), {})["joint"] = float(lexical.joint[position, rank])
        if embedded is not None:
            for rank in np.flatnonzero((embedded.scores[position] >= settings.judge_min_cosine)
                                       & (embedded.items[position] >= 0)):
                scored.setdefault(int(embedded.items[position, rank]), {})["cosine"] = float(
                    embedded.scores[position, rank])
        taken: Counter = Counter()
        for entry, scores in sorted(scored.items(), key=lambda pair: (-max(pair[1].values()), pair[0])):
            benchmark = index.benchmarks[entry]
            if (position, benchmark) not in done and taken[benchmark] < settings.judge_per_question:
                taken[benchmark] += 1
                candidates.append((position, entry, scores))
    return candidates


def judge_matches(questions: Sequence[str], index: BenchmarkItems, settings: ModelScreenSettings,
                  caught: Iterable[tuple[int, str]], embedded: Nearest | None, judge: Judge,
                  counters: Counter) -> list[dict[str, Any]]:
    """The judge's matches (a Yes), one per (question, benchmark) at most. `counters` gets the
    candidates judged and their outcomes: judge_yes, judge_no, judge_no_verdict, judge_too_long."""
    caught = set(caught)
    candidates = judge_candidates(questions, index, settings, caught, embedded)
    replies = judge([same_problem_messages(questions[position], index.questions[entry])
                     for position, entry, _ in candidates], "judge") if candidates else []
    counters["judge_candidates"] += len(candidates)
    found: dict[tuple[int, str], dict[str, Any]] = {key: {} for key in caught}  # empty: held by an earlier screen
    for (position, entry, scores), reply in zip(candidates, replies):
        if reply is None:
            counters["judge_too_long"] += 1
            continue
        counters["generated_tokens"] += reply.tokens
        verdict = parse_verdict(reply.text)
        counters["judge_no_verdict" if verdict is None else "judge_yes" if verdict else "judge_no"] += 1
        if verdict:
            add_match(found, index, position, entry, JUDGE, {**scores, "judge_reply": reply.text})
    return [match for match in found.values() if match]


def model_matches(questions: Sequence[str], index: BenchmarkItems, settings: ModelScreenSettings,
                  caught: Iterable[tuple[int, str]], embed: Embed | None, judge: Judge | None,
                  counters: Counter) -> list[dict[str, Any]]:
    """The embedding screen's matches, then the judge's for the pairs still open, sorted by question
    and benchmark (`caught`: the (question, benchmark) pairs the model-free screens matched). The
    judge is called only after the last embedding."""
    caught = set(caught)
    found: list[dict[str, Any]] = []
    embedded = None
    if embed is not None:
        found, embedded = embedding_matches(questions, index, settings, caught, embed)
        caught |= {(match["question"], match["benchmark"]) for match in found}
    if judge is not None:
        found += judge_matches(questions, index, settings, caught, embedded, judge, counters)
    return sorted(found, key=lambda match: (match["question"], match["benchmark"]))
