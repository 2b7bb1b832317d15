"""The demo's offline benchmark: templated problems held out from the tiny LM's training corpus,
and a few of them planted in the seed questions, so that decontamination has something real to
catch without downloading a benchmark."""
from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_path
from ..normalize import normalize_question
from .corpus import LM_PROBLEMS, Problem, make_problems

HELDOUT_QUESTIONS = 1000  # benchmark items, solvable ASCII problems as a math test set has
PLANTED_QUESTIONS = 4  # of them, added to the seed questions (what the generators are trained on)


def heldout_problems(count: int, seed: int, lm_seed: int) -> list[Problem]:
    """`count` distinct solvable ASCII problems drawn with `seed`, none of which is in the tiny LM's
    training corpus (drawn with `lm_seed`)."""
    seen = {normalize_question(problem.question) for problem in make_problems(LM_PROBLEMS, lm_seed)}
    chosen: list[Problem] = []
    draw = 0
    while len(chosen) < count:
        for problem in make_problems(4 * count, seed + draw):
            key = normalize_question(problem.question)
            if problem.solvable and problem.question.isascii() and key not in seen:
                seen.add(key)
                chosen.append(problem)
                if len(chosen) == count:
                    break
        draw += 1
    return chosen


def write_tiny_benchmark(heldout_out: str | Path, planted_out: str | Path, *, seed: int, lm_seed: int) -> None:
    """The held-out problems as a benchmark file (JSONL: question, answer) and the first few of them,
    in the same form, as a seed-question file."""
    problems = heldout_problems(HELDOUT_QUESTIONS, seed, lm_seed)
    for path, chosen in ((heldout_out, problems), (planted_out, problems[:PLANTED_QUESTIONS])):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(json.dumps({"question": p.question, "answer": str(p.answer)}) + "\n"
                                   for p in chosen), encoding="utf-8")
