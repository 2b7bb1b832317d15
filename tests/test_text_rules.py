"""Language rules, verdict parsing, final-answer detection."""
import pytest

from scalequest.answers import has_final_answer, last_boxed, parse_verdict
from scalequest.engines import Completion
from scalequest.language import language_drop_reason
from scalequest.stages.generate import question_drop_reason


@pytest.mark.parametrize("text, ascii_reason, aware_reason", [
    ("What is 3 + 4?", None, None),
    ("A tile is 3 cm × 4 cm. What is its area in cm²?", "non_ascii", None),
    ("A pen costs €5 and the angle is 30°; is π > 3? Is x ≤ 2?", "non_ascii", None),
    ("Café prices: what is ½ of 10?", "non_ascii", None),
    ("小明有5个苹果。他有几个苹果？", "non_ascii", "other_script"),
    ("У Тома 5 яблок. Сколько яблок?", "non_ascii", "other_script"),
    ("What is 3 + 4? \ufffd", "non_ascii", "other_script"),
    ("Compute ٣ + 4", "non_ascii", "other_script"),
])
def test_language_rules(text, ascii_reason, aware_reason):
    assert language_drop_reason(text, "ascii") == ascii_reason
    assert language_drop_reason(text, "script_aware") == aware_reason
    assert language_drop_reason(text, "none") is None


def test_unknown_language_rule():
    with pytest.raises(ValueError, match="unknown language rule 'klingon'"):
        language_drop_reason("x", "klingon")


@pytest.mark.parametrize("reply, verdict", [
    ("It states all quantities.\nVerdict: Yes", True),
    ("Yes, x is positive, but the base is missing.\nVerdict: No", False),  # "yes" anywhere is not a Yes
    ("Reasoning...\n**Verdict:** **No**", False),
    ("so the problem is solvable. \\boxed{Yes}", True),
    ("The final answer is \\boxed{\\text{No}}", False),
    ("After checking, the answer is: yes", True),
    ("There is no missing information.\nThe question can be solved.", None),
    ("", None),
])
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


@pytest.mark.parametrize("response, has_answer", [
    ("3 + 4 = 7. The answer is \\boxed{7}.", True),
    ("so \\boxed{\\frac{1}{2}}", True),
    ("so \\boxed{}", False),
    ("so \\boxed{7", False),
    ("Therefore, the final answer is 12.", True),
    ("I am not sure about the result.", False),
])
def test_has_final_answer(response, has_answer):
    assert has_final_answer(response) is has_answer


def test_last_boxed_nested():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"


@pytest.mark.parametrize("completion, reason", [
    (Completion("What is 2 + 2?", 8, True), None),
    (Completion("   \n", 2, True), "empty"),
    (Completion("What is 2 +", 128, False), "truncated"),
    (Completion("What is \ufffd2?", 6, True), "undecodable"),
])
def test_question_drop_reasons(completion, reason):
    assert question_drop_reason(completion) == reason
