"""Grading answers for fail-rate labels: unit cases, then the real GSM8K and MATH train sets (read
from ../shared/data, never copied here) graded with the real math_verify."""
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from conftest import SHARED_DATA
from scalequest import grading
from scalequest.answers import gold_answer
from scalequest.grading import answers_match, final_answer, gold_drop_reason, grade

MIN_MATCH = 0.995  # gold from the solution vs the dataset's own answer
MIN_GRADE = 0.99  # gold solutions read as responses; perturbed answers judged wrong
# The only MATH train records whose solution boxes nothing: `\boxed{}` (a quirk of the original).
EMPTY_BOX_IDS = {"train/number_theory/7115.json", "train/number_theory/7117.json"}
_GSM8K_LINE = re.compile(r"^####[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def read_jsonl(name):
    with open(SHARED_DATA / name, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def math_train():
    return read_jsonl("math_train.jsonl")


@pytest.fixture(scope="module")
def gsm8k_train():
    return read_jsonl("gsm8k_train.jsonl")


def gsm8k_reference(solution):
    """The GSM8K answer as the dataset writes it: the text of its `#### ...` line, separators kept
    ("1,080"), found independently of gold_answer."""
    return _GSM8K_LINE.findall(solution)[-1]


def assert_rate(outcomes, minimum, what):
    """`outcomes`: (passed, description) pairs; fail listing the first 20 misses."""
    misses = [description for passed, description in outcomes if not passed]
    rate = 1 - len(misses) / len(outcomes)
    print(f"{what}: {rate:.4%} of {len(outcomes)} ({len(misses)} misses)")
    assert rate >= minimum, f"{what}: {rate:.4%} < {minimum:.1%}; first misses:\n" + "\n".join(map(str, misses[:20]))


# --- unit cases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, answer_format, gold", [
    ("She pays 2 * 600 = <<2*600=1200>>1200.\n#### 1,200", "gsm8k", "1200"),
    ("so 3 + 4 = 7\n####  -7 ", "gsm8k", "-7"),
    ("#### 2,520,000", "gsm8k", "2520000"),
    ("no marker here", "gsm8k", None),
    ("####   ", "gsm8k", None),
    ("First $\\boxed{1}$, then $x = \\boxed{\\frac{1}{2}}$.", "boxed", "\\frac{1}{2}"),
    ("The answer is \\fbox{(1,2)}.", "boxed", "(1,2)"),
    ("It follows that $x^2 + y^2 = \\boxed 9$.", "boxed", "9"),  # brace-less, as in 2 MATH solutions
    ("there are $\\boxed{}$ primes", "boxed", None),
    ("no box", "boxed", None),
    ("  \\frac{3}{4} ", "plain", "\\frac{3}{4}"),
    ("   ", "plain", None),
])
def test_gold_answer(text, answer_format, gold):
    assert gold_answer(text, answer_format) == gold


def test_gold_answer_unknown_format():
    with pytest.raises(ValueError, match="unknown answer format 'latex'"):
        gold_answer("\\boxed{1}", "latex")


@pytest.mark.parametrize("text, answer_format, reason", [
    ("so $\\boxed{\\frac{1}{2}}$", "boxed", None),
    ("\\boxed{\\text{Devon}}", "boxed", None),
    ("#### 1,200", "gsm8k", None),
    ("a solution with no box", "boxed", "no_gold"),
    ("a solution with no final line", "gsm8k", "no_gold"),
    ("", "plain", "no_gold"),
    ("there are $\\boxed{}$ primes", "boxed", "unparsable_gold"),
    ("#### ", "gsm8k", "unparsable_gold"),
    ("\\boxed{\\\\}", "boxed", "unparsable_gold"),
])
def test_gold_drop_reason(text, answer_format, reason):
    assert gold_drop_reason(text, answer_format) == reason


@pytest.mark.parametrize("response, answer", [
    ("3 + 4 = 7. The answer is \\boxed{7}.", "7"),
    ("first \\boxed{1}, finally $\\boxed{\\frac{a}{b}}$", "\\frac{a}{b}"),
    ("so \\fbox{12}", "12"),
    ("so \\boxed{} and the answer is 5.", "5"),  # an empty box states nothing
    ("The answer is 42.", "42"),
    ("Thus the final answer is: $\\frac{1}{2}$. Done.", "\\frac{1}{2}"),
    ("THE ANSWER IS **7**", "7"),
    ("The answer is 3.5.\nAnything after the line is not the answer.", "3.5"),
    ("The answer is 3. Let me double check: yes.", "3"),
    ("The answer is $\\$1.50$.", "\\$1.50"),
    ("I think the answer is 6, no wait, the final answer is 8.", "8"),
    ("She pays 1200.\n#### 1,200", "1,200"),
])
def test_final_answer(response, answer):
    assert final_answer(response) == answer


@pytest.mark.parametrize("response", [
    "I am not sure about the result.",
    "so \\boxed{}",
    "so \\boxed{7",  # unclosed
    "The answer is",
    "the answer is: .",
    "",
])
def test_final_answer_none(response):
    assert final_answer(response) is None


@pytest.mark.parametrize("predicted, gold", [
    ("1200", "1,200"),
    ("0.5", "\\frac{1}{2}"),
    ("\\dfrac12", "\\frac{1}{2}"),
    ("1/2", "\\frac12"),
    ("\\frac{2}{4}", "\\frac{1}{2}"),
    ("(1, 2)", "(1,2)"),
    ("\\left( \\frac{1}{15}, \\frac{2}{15} \\right)", "(1/15, 2/15)"),
    ("[1,3)", "[1, 3)"),
    ("(-\\infty, 2]", "(-\\infty,2]"),
    ("x^2+1", "1+x^2"),
    ("\\frac18, \\frac13", "\\frac{1}{3}, \\frac{1}{8}"),
    ("\\text{(F)}", "(F)"),
    ("\\text{Devon}", "Devon"),
    ("90", "90^\\circ"),
    ("90^{\\circ}", "90^\\circ"),
    ("10", "10\\mbox{ cm}"),
    ("\\$1.50", "1.50"),
    ("2", "\\sqrt{4}"),
    ("5.", "5"),
    ("$7$", "7"),
    ("\\begin{pmatrix} -1/3 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} -\\frac{1}{3} \\\\ 2 \\end{pmatrix}"),
])
def test_answers_match(predicted, gold):
    assert answers_match(predicted, gold)


@pytest.mark.parametrize("predicted, gold", [
    ("1201", "1,200"),
    ("(2,1)", "(1,2)"),
    ("(1,3]", "[1,3)"),
    ("x^2-1", "x^2+1"),
    ("\\frac{1}{3}", "\\frac{1}{2}"),
    ("3", "\\sqrt{4}"),
    ("\\text{(E)}", "\\text{(F)}"),
    ("", "1"),
    ("1", ""),
    ("garbage }{ \\frac{", "1"),
    ("$", "$"),
    ("\\boxed{", "}{"),
])
def test_answers_do_not_match(predicted, gold):
    assert not answers_match(predicted, gold)


def test_grade():
    assert grade("2 + 2 = 4, so the answer is \\boxed{4}.", "4") == "correct"
    assert grade("The answer is 0.5.", "\\frac{1}{2}") == "correct"
    assert grade("so \\boxed{5}", "4") == "wrong"
    assert grade("so \\boxed{)(}{\\frac{", "4") == "wrong"  # garbage counts as wrong, never raises
    assert grade("I could not solve it.", "4") == "no_answer"
    assert grade("so \\boxed{}", "4") == "no_answer"


def test_pathological_input_is_bounded(monkeypatch):
    """sympy would spend forever on a power tower; the time bound turns it into a fast False."""
    monkeypatch.setattr(grading, "VERIFY_TIMEOUT_S", 1)
    start = time.monotonic()
    assert not answers_match("9^{9^{9^{9}}}", "1")
    assert time.monotonic() - start < 8


def test_answers_match_in_threads():
    """math_verify's signal timeout fails outside the main thread; there it runs without one, and
    an answer over MAX_VERIFY_CHARS is compared as a string only (the main thread verifies it)."""
    long_sum = "+".join(["1"] * (grading.MAX_VERIFY_CHARS // 2 + 1))
    assert answers_match(long_sum, str(grading.MAX_VERIFY_CHARS // 2 + 1))
    cases = [("0.5", "\\frac{1}{2}", True), ("(1,2)", "(1, 2)", True), ("1,200", "1200", True),
             ("\\frac{1}{3}", "\\frac{1}{2}", False), ("garbage }{ \\frac{", "1", False),
             (long_sum, str(grading.MAX_VERIFY_CHARS // 2 + 1), False)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda case: (answers_match(case[0], case[1]), threading.current_thread().name), cases))
    assert [matched for matched, _ in results] == [expected for _, _, expected in cases]
    assert all(name != threading.main_thread().name for _, name in results)


# --- the real seed sets -----------------------------------------------------------------------------

def test_math_train_gold_matches_answer_field(math_train):
    """The gold answer read from each MATH solution is the dataset's own `answer`; the only misses
    are the two records whose solution boxes nothing (their `answer` is "" too)."""
    outcomes = []
    for record in math_train:
        gold = gold_answer(record["solution"], "boxed")
        outcomes.append((gold is not None and answers_match(gold, record["answer"]),
                         (record["unique_id"], gold, record["answer"])))
    assert_rate(outcomes, MIN_MATCH, "MATH train gold vs answer")
    assert {uid for passed, (uid, _, _) in outcomes if not passed} == EMPTY_BOX_IDS


def test_gsm8k_train_gold_matches_final_line(gsm8k_train):
    """The gold read from each GSM8K solution equals the `####` line as written; separators such as
    "1,080" (79 records) leave the string comparison to math_verify."""
    outcomes, with_separators = [], 0
    for record in gsm8k_train:
        gold, reference = gold_answer(record["answer"], "gsm8k"), gsm8k_reference(record["answer"])
        with_separators += "," in reference
        outcomes.append((gold is not None and answers_match(gold, reference), (gold, reference)))
    assert_rate(outcomes, MIN_MATCH, "GSM8K train gold vs #### line")
    assert with_separators >= 50  # the math_verify path really ran


def test_gold_drop_reasons_on_seed_sets(math_train, gsm8k_train):
    """Every seed record's gold parses, except MATH's two empty boxes: "unparsable_gold"."""
    math_reasons = {record["unique_id"]: gold_drop_reason(record["solution"], "boxed") for record in math_train}
    assert ({uid: reason for uid, reason in math_reasons.items() if reason}
            == dict.fromkeys(EMPTY_BOX_IDS, "unparsable_gold"))
    assert not [record["answer"] for record in gsm8k_train if gold_drop_reason(record["answer"], "gsm8k")]


def test_gold_solutions_grade_correct(math_train, gsm8k_train):
    """A gold solution read as a response is correct against its own answer: MATH by its last box,
    GSM8K by its `####` line."""
    outcomes = [(grade(r["solution"], r["answer"]) == "correct",
                 (r["unique_id"], final_answer(r["solution"]), r["answer"]))
                for r in math_train if r["unique_id"] not in EMPTY_BOX_IDS]
    assert_rate(outcomes, MIN_GRADE, "MATH train solutions graded correct")
    outcomes = [(grade(r["answer"], gsm8k_reference(r["answer"])) == "correct", gsm8k_reference(r["answer"]))
                for r in gsm8k_train]
    assert_rate(outcomes, MIN_GRADE, "GSM8K train solutions graded correct")


def test_answer_phrases_grade_correct(math_train):
    """Every MATH answer, stated as "The final answer is $...$." instead of boxed, grades correct."""
    outcomes = []
    for record in math_train:
        if record["unique_id"] in EMPTY_BOX_IDS:
            continue
        response = f"We simplify step by step.\nThe final answer is ${record['answer']}$."
        outcomes.append((grade(response, record["answer"]) == "correct", (final_answer(response), record["answer"])))
    assert_rate(outcomes, MIN_GRADE, "MATH answers as phrases graded correct")


def test_gsm8k_off_by_one_grades_wrong(gsm8k_train):
    outcomes = []
    for record in gsm8k_train:
        gold = gold_answer(record["answer"], "gsm8k")
        response = f"{record['answer'].rpartition('####')[0]}The answer is {int(gold) + 1}."  # all are integers
        outcomes.append((grade(response, gold) == "wrong", (gold, final_answer(response))))
    assert_rate(outcomes, MIN_GRADE, "GSM8K gold + 1 graded wrong")


# MATH answers that are a plain number: an integer, a decimal, or a (signed) fraction.
_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d*\.\d+")
_FRACTION = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}")


def numeric_rewrites(answer):
    """(an equal value written differently, the value plus one) for a numeric MATH answer, else
    None. The rewrites defeat the string comparison, so math_verify decides."""
    if _INTEGER.fullmatch(answer):
        return f"{answer}.0", str(int(answer) + 1)
    if _DECIMAL.fullmatch(answer):
        return f"{answer}0", str(Decimal(answer) + 1)
    fraction = _FRACTION.fullmatch(answer)
    if fraction:
        sign, top, bottom = fraction.groups()
        value = (-1 if sign else 1) * int(top) / int(bottom)
        return f"{sign}{top}/{bottom}", f"\\frac{{{round((value + 1) * int(bottom))}}}{{{bottom}}}"
    return None


def test_math_numeric_rewrites(math_train):
    """On the numeric MATH answers, an equal value written otherwise grades correct, and the value
    plus one grades wrong: the math_verify path on real answers, both ways."""
    pairs = [(record["answer"], rewrites) for record in math_train if (rewrites := numeric_rewrites(record["answer"]))]
    assert len(pairs) >= 4000
    equal = [(grade(f"so \\boxed{{{same}}}", answer) == "correct", (answer, same)) for answer, (same, _) in pairs]
    assert_rate(equal, MIN_GRADE, "MATH numeric answers rewritten, graded correct")
    off = [(grade(f"so \\boxed{{{other}}}", answer) == "wrong", (answer, other)) for answer, (_, other) in pairs]
    assert_rate(off, MIN_GRADE, "MATH numeric answers + 1, graded wrong")
