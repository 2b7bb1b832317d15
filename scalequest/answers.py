"""Reading text, with no math library: final answers in responses, Yes/No verdicts from the judge, gold
answers in a dataset's solutions (grading.py compares answers)."""
from __future__ import annotations

import re

_ANSWER_PHRASE = re.compile(r"(?:the|final)\s+answer\s+is\s*:?\s*\S", re.IGNORECASE)
_VERDICT_LINE = re.compile(r"verdict\s*[:：]?\s*[*_`]*\s*(yes|no)\b", re.IGNORECASE)
_BOXED_VERDICT = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*(yes|no)\s*\}?\s*\}", re.IGNORECASE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
# `\fbox{`, `\boxed {` -> `\boxed{`, and the brace-less `\boxed 2` of a few MATH solutions ->
# `\boxed{2}`, so that last_boxed reads them all.
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BARE_BOX = re.compile(r"\\boxed\s+([^\s${}]+)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (balanced braces), or None if there is none or it is unclosed."""
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, begin = 0, start + len("\\boxed{")
        for pos in range(begin, len(text)):
            if text[pos] == "{":
                depth += 1
            elif text[pos] == "}":
                if depth == 0:
                    return text[begin:pos]
                depth -= 1
        start = text.rfind("\\boxed{", 0, start)
    return None


def has_final_answer(response: str) -> bool:
    """True if the response states a final answer: a non-empty \\boxed{}, or "the answer is ..."."""
    boxed = last_boxed(response)
    if boxed is not None and boxed.strip():
        return True
    return bool(_ANSWER_PHRASE.search(response))


def parse_verdict(reply: str) -> bool | None:
    """The judge's final Yes/No: the last "Verdict: ..." line, else the last \\boxed{Yes|No},
    else the last yes/no word on the reply's last non-empty line. None when there is no verdict.

    Unlike "yes appears anywhere", reasoning such as "yes, x is positive ... Verdict: No" is a No.
    """
    for pattern in (_VERDICT_LINE, _BOXED_VERDICT):
        found = pattern.findall(reply)
        if found:
            return found[-1].lower() == "yes"
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    if lines:
        found = _YES_NO.findall(lines[-1])
        if found:
            return found[-1].lower() == "yes"
    return None


def last_box(text: str) -> str | None:
    """Content of the last `\\boxed{}`/`\\fbox{}`/`\\boxed x`, via last_boxed."""
    return last_boxed(_BARE_BOX.sub(r"\\boxed{\1}", _BOX_OPEN.sub(r"\\boxed{", text)))


def gold_text(text: str, answer_format: str) -> str | None:
    """The raw gold answer in `text`: None when its format's marker is missing, "" when empty."""
    if answer_format == "gsm8k":
        _, marker, tail = text.rpartition("####")
        return _THOUSANDS.sub("", tail.strip()) if marker else None
    if answer_format == "boxed":
        return last_box(text)
    if answer_format == "plain":
        return text.strip() or None  # a blank answer field is no answer, not an empty one
    raise ValueError(f"unknown answer format {answer_format!r}: use gsm8k, boxed or plain")


def gold_answer(text: str, answer_format: str) -> str | None:
    """The gold final answer in a dataset's solution text, or None if there is none or it is empty.

    Formats: "gsm8k" (after the last `####`, thousands separators removed), "boxed" (the last
    `\\boxed{}` or `\\fbox{}`), "plain" (the text is the answer itself).
    """
    return (gold_text(text, answer_format) or "").strip() or None
