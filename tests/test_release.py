"""Best-of-n, dedup, shuffle, funnel chaining and the card."""

import pytest

from scalequest.funnel import check_chain
from scalequest.records import BEST, to_table
from scalequest.stages.best import pick_best
from scalequest.stages.release import dedup_exact, normalize_question, shuffle
from scalequest.stats import Funnel, StatsError


def test_pick_best_is_argmax_with_margin():
    assert pick_best(["a", "b", "c"], [0.1, 0.9, 0.4]) == ("b", 0.9, pytest.approx(0.5))
    assert pick_best(["a"], [0.3]) == ("a", 0.3, None)
    assert pick_best(["a", "b"], [0.5, 0.5])[0] == "a"  # ties keep the first
    with pytest.raises(ValueError, match="one score per response"):
        pick_best(["a", "b"], [0.1])


def best_rows(questions_scores):
    return [{"id": f"g-00000-{i}", "generator": "g", "shard": 0, "question": q, "question_model": "m",
             "question_seed": 1, "response": "r", "score": s, "margin": None, "candidates": 1,
             "response_model": "m", "reward_model": "r"} for i, (q, s) in enumerate(questions_scores)]


def test_normalization():
    assert normalize_question("  What is 2+2 ?\n") == normalize_question("what is   2+2") == "what is 2+2"


def test_dedup_keeps_best_scoring_copy():
    table = to_table(best_rows([("What is 2+2?", 0.1), ("what is 2+2", 0.7), ("What is 3+3?", 0.2)]), BEST)
    unique, duplicates = dedup_exact(table)
    assert duplicates == 1
    assert sorted(unique.column("id").to_pylist()) == ["g-00000-1", "g-00000-2"]


def test_shuffle_is_deterministic_and_order_free():
    table = to_table(best_rows([(f"Q{i}?", i / 10) for i in range(20)]), BEST)
    first = shuffle(table, 5).column("id").to_pylist()
    assert first == shuffle(table.take(list(reversed(range(20)))), 5).column("id").to_pylist()
    assert first != shuffle(table, 6).column("id").to_pylist()
    assert sorted(first) == sorted(table.column("id").to_pylist())


def sidecar(total, kept):
    funnel = Funnel(total=total, kept=kept)
    funnel.dropped["x"] = total - kept
    return {"questions": funnel}


def test_chain_check_catches_lost_questions():
    good = {"generate": {("g", "00000"): sidecar(10, 8)}, "filter": {("g", "00000"): sidecar(8, 5)}}
    check_chain(good, ["generate", "filter"])
    stale = {"generate": {("g", "00000"): sidecar(10, 8)}, "filter": {("g", "00000"): sidecar(7, 5)}}
    with pytest.raises(StatsError, match="generate kept 8 questions but filter received 7"):
        check_chain(stale, ["generate", "filter"])
