"""Seed questions: the configured sources merged, deduplicated and capped. QFT trains on the
questions; the difficulty labels grade the solver against each question's gold answer."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

from .atomic import atomic_path, write_json_atomic
from .jsonl import read_rows
from .normalize import normalize_question
from .sources import load_source_with_answers
from .stats import Funnel


def collect_seed_questions(*, sources: Sequence[Mapping[str, Any]], max_questions: int, seed: int,
                           out: str | Path, stats_out: str | Path) -> Funnel:
    """Write `out` (JSONL: question, source, answer, answer_format) and a stats file; returns the funnel.

    Empty questions and exact duplicates (normalized text, the first source in the list
    wins) are dropped; above `max_questions`, a seeded sample is kept (`over_cap`). `answer` is the
    text of the source's `answer_field` (None where there is none); the difficulty labels read the
    gold answer from it, and count the records where they cannot."""
    funnel = Funnel("question")
    unique: list[dict[str, str | None]] = []
    seen: set[str] = set()
    per_source = {}
    for source in sources:
        name = source["name"]
        records = load_source_with_answers(source, seed)
        per_source[name] = len(records)
        answer_format = source.get("answer_format", "plain")
        for question, answer in records:
            key = normalize_question(question)
            if not key:
                funnel.drop("empty")
            elif key in seen:
                funnel.drop("duplicate")
            else:
                seen.add(key)
                unique.append({"question": question.strip(), "source": name, "answer": answer,
                               "answer_format": answer_format})
    if len(unique) > max_questions:
        chosen = sorted(random.Random(seed).sample(range(len(unique)), max_questions))
        funnel.drop("over_cap", len(unique) - max_questions)
        unique = [unique[i] for i in chosen]
    funnel.keep(len(unique))
    funnel.check("seed questions")
    with atomic_path(out) as tmp:
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in unique), encoding="utf-8")
    write_json_atomic(stats_out, {"stage": "seed_questions", "seed": seed, "sources": per_source,
                                  "questions": funnel.to_json(),
                                  "with_answer": sum(row["answer"] is not None for row in unique)})
    return funnel


def read_seeds(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a seed file."""
    return read_rows(path)
