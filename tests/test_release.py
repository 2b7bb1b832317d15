"""Best-of-n, drop reasons, shuffle, funnel chaining and the card."""

import pyarrow as pa
import pytest

from scalequest.funnel import check_chain
from scalequest.normalize import normalize_question
from scalequest.records import BEST, to_table
from scalequest.stages.best import pick_best
from scalequest.stages.decontaminate import MATCHES
from scalequest.stages.dedup import DUPLICATES_SCHEMA
from scalequest.stages.release import DropRule, attribute_contamination
from scalequest.stages.shuffle import shuffle_table as shuffle
from scalequest.stats import Funnel, StatsError


def test_pick_best_is_argmax_with_margin():
    assert pick_best(["a", "b", "c"], [0.1, 0.9, 0.4]) == ("b", 0.9, pytest.approx(0.5))
    assert pick_best(["a"], [0.3]) == ("a", 0.3, None)
    assert pick_best(["a", "b"], [0.5, 0.5])[0] == "a"  # ties keep the first
    with pytest.raises(ValueError, match="one score per response"):
        pick_best(["a", "b"], [0.1])


def best_rows(questions_scores):
    return [{"id": f"g-00000-{i}", "generator": "g", "shard": 0, "question": q, "question_model": "m",
             "question_seed": 1, "difficulty": None, "response": "r", "score": s, "margin": None, "candidates": 1,
             "response_model": "m", "reward_model": "r"} for i, (q, s) in enumerate(questions_scores)]


def test_normalization():
    assert normalize_question("  What is 2+2 ?\n") == normalize_question("what is   2+2") == "what is 2+2"


def match_rows(rows):
    """MATCHES rows from (id, benchmark, method, score): the score is an n-gram overlap or a joint cosine."""
    return pa.Table.from_pylist([
        {"id": row_id, "benchmark": benchmark, "item": 0, "benchmark_question": "q", "method": method,
         **({"shared_ngrams": 3, "overlap": score} if method == "ngram" else {"signature": 0.9, "words": 0.9,
                                                                             "joint": score})}
        for row_id, benchmark, method, score in rows], schema=MATCHES.schema)


def test_duplicates_go_first_then_contamination_by_screen_score_then_config_order():
    duplicates = pa.table({"id": ["a", "b"], "reason": ["duplicate", "near_duplicate"], "kept_id": ["e", "e"],
                           "similarity": [1.0, 0.8]}, schema=DUPLICATES_SCHEMA)
    matches = match_rows([("b", "gsm8k", "ngram", 1.0), ("c", "math", "ngram", 0.6), ("c", "gsm8k", "ngram", 0.9),
                          ("d", "math500", "ngram", 0.8), ("d", "math", "ngram", 0.8),
                          ("f", "gsm8k", "lexical", 0.99), ("f", "math", "ngram", 0.5),
                          ("g", "gsm8k", "number_variant", 0.95), ("h", "math", "number_variant", 0.97),
                          ("h", "gsm8k", "lexical", 0.6)])
    contamination = attribute_contamination(matches, ["gsm8k", "math", "math500"], drop_variants=False)
    assert [match["benchmark"] for match in contamination["d"]] == ["math", "math500"]
    assert [match["method"] for match in contamination["f"]] == ["ngram", "lexical"]  # n-gram first, whatever the score
    assert [match["method"] for match in contamination["h"]] == ["lexical", "number_variant"]
    rule = DropRule(duplicates, contamination, drop_variants=False)
    reasons = rule(["a", "b", "c", "d", "e", "f", "g", "h"])
    assert reasons == ["duplicate", "near_duplicate", "contaminated:gsm8k", "contaminated:math", None,
                       "contaminated:math", None, "contaminated:gsm8k"]
    assert rule.variants == {"g"}  # released, for number_variants.jsonl
    dropping = DropRule(duplicates, attribute_contamination(matches, ["gsm8k", "math", "math500"], True), True)
    assert dropping(["g"]) == ["contaminated:gsm8k"] and dropping.variants == set()


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
