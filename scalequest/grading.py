"""Grading a solver's answers against gold answers, for fail-rate labels and the evaluation.

Gold answers come from a dataset's solution text (answers.gold_answer), a response's stated answer from
`final_answer`, and `answers_match` decides equivalence: a cheap normalized string comparison,
then math_verify (symbolic and numeric equivalence) under a time bound.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Literal

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException

from .answers import gold_text, last_box

Grade = Literal["correct", "wrong", "no_answer"]
GoldDrop = Literal["no_gold", "unparsable_gold"]

# Seconds math_verify may spend parsing one answer or comparing one pair. Its timeout is
# signal.alarm, so only whole seconds, and only in the main thread (see `_timeout`).
VERIFY_TIMEOUT_S = 3
# Without a timeout (threads) an answer this long is compared as a string only: sympy can hang
# on large inputs, and real final answers are far shorter (MATH train's longest is 159 chars).
MAX_VERIFY_CHARS = 400
_PARSE_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())

# The last stated answer: "the answer is ...", "final answer is ..." or a GSM8K "#### ..." line.
_ANSWER_MARKER = re.compile(r"(?:(?:the|final)\s+answer\s+is\b|####)", re.IGNORECASE)
# An answer written in math mode ends where the math does, not at the first period.
_MATH_SPAN = re.compile(r"\$\$((?:\\.|[^\\$])+)\$\$|\$((?:\\.|[^\\$])+)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_SENTENCE = re.compile(r"(.*?)(?:\.(?=\s|$)|$)")  # up to a period that ends a sentence, not "3.5"
_DOLLAR = re.compile(r"(?<!\\)\$")  # math-mode delimiters, not an escaped dollar sign
# Markup that never changes the value, dropped before the string comparison.
_UNIT = re.compile(r"(?<=[\d}])\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z ]*\}$")  # 10\mbox{ cm}
_WRAPPER = re.compile(r"\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}")
_NOISE = re.compile(r"\\left|\\right|\\[!,;: ]|\\?\$|\^\s*\{?\\circ\}?|°|\\degree|\\%|%|\s")


def final_answer(response: str) -> str | None:
    """The final answer a response states: its last non-empty `\\boxed{}`, else what follows its
    last "the answer is" / "final answer is" / "####" up to the end of that sentence or line.
    None when it states none."""
    boxed = last_box(response)
    if boxed and boxed.strip():
        return boxed.strip()
    markers = list(_ANSWER_MARKER.finditer(response))
    if not markers:
        return None
    rest = response[markers[-1].end():].lstrip(" \t:*_")
    math = _MATH_SPAN.match(rest)
    if math:
        answer = next(group for group in math.groups() if group is not None)
    else:
        answer = _SENTENCE.match(rest.split("\n", 1)[0]).group(1)
    answer = answer.strip().strip("*_`").strip().rstrip(".").strip("$ ")
    return answer or None


def _normalized(answer: str) -> str:
    """`answer` without markup that never changes its value: spacing, `\\left`/`\\right`, `$`,
    degree marks, percent signs, trailing units, `\\text{}` wrappers, `\\dfrac`, a final period."""
    text = _UNIT.sub("", answer.strip().rstrip("."))
    text = _WRAPPER.sub(r"\1", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return _NOISE.sub("", text).rstrip(".")


def _timeout() -> int | None:
    """math_verify's timeout here: its signal.alarm only works in the main thread, and elsewhere it
    raises, so in other threads there is none (MAX_VERIFY_CHARS bounds the risk instead)."""
    return VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=16384)  # a gold answer is parsed again for each of its k sampled answers
def _parsed(answer: str, timeout: int | None) -> tuple:
    """math_verify's parses of one answer (sympy objects, then the matched string); () if none."""
    if timeout is None and len(answer) > MAX_VERIFY_CHARS:
        return ()
    # Wrapped in $...$ so that the LaTeX extractor reads the whole answer, not a part of it.
    math = _DOLLAR.sub("", answer).strip()
    try:
        return tuple(parse(f"${math}$", list(_PARSE_CONFIG), parsing_timeout=timeout)) if math else ()
    # math_verify catches its own errors and timeouts; this is for what it lets through (its
    # TimeoutException is a BaseException, so it needs naming).
    except (Exception, TimeoutException):
        return ()


def answers_match(predicted: str, gold: str) -> bool:
    """True when `predicted` is equivalent to `gold`: equal once normalized, else equal for
    math_verify (parse both, `verify(gold, predicted)`). Never raises: unparsable input is False."""
    try:
        normalized = _normalized(predicted)
        if normalized and normalized == _normalized(gold):
            return True
        timeout = _timeout()
        gold_parsed, predicted_parsed = _parsed(gold, timeout), _parsed(predicted, timeout)
        if not gold_parsed or not predicted_parsed:
            return False
        return bool(verify(list(gold_parsed), list(predicted_parsed), timeout_seconds=timeout))
    except (Exception, TimeoutException):  # a grader bug counts as wrong, never stops a labelling run
        return False


def grade(response: str, gold: str) -> Grade:
    """The grade of `response` against `gold`: "correct", "wrong", or "no_answer" (it states no
    final answer), so that callers can count why."""
    predicted = final_answer(response)
    if predicted is None:
        return "no_answer"
    return "correct" if answers_match(predicted, gold) else "wrong"


def gold_drop_reason(text: str, answer_format: str) -> GoldDrop | None:
    """Why a record cannot be graded, for callers to count: "no_gold" (its text has no gold answer:
    no `####`, no box), "unparsable_gold" (it has one, but empty or unreadable to math_verify, e.g.
    `\\boxed{}`). None when `gold_answer(text, answer_format)` is usable."""
    gold = gold_text(text, answer_format)
    if gold is None:
        return "no_gold"
    gold = gold.strip()
    return None if gold and _parsed(gold, _timeout()) else "unparsable_gold"
