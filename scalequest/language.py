"""Language rules for generated questions."""
from __future__ import annotations

import unicodedata
from typing import Callable

# Letters of these scripts are kept by the script-aware rule (accented Latin words, Greek
# letters used as math symbols); every other script's letters are dropped.
_KEPT_LETTER_SCRIPTS = ("LATIN", "GREEK")
# Symbols, punctuation, spaces and non-script numerals (°, π's neighbours ×, ≤, €, ², ½, “ ”).
_KEPT_CATEGORIES = {"Sm", "Sc", "Sk", "So", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs"}
_REPLACEMENT_CHAR = "\ufffd"


def is_ascii(text: str) -> bool:
    """The paper's rule: ASCII only."""
    return text.isascii()


def is_latin_with_math(text: str) -> bool:
    """ASCII plus Latin/Greek letters and Unicode math/currency symbols and punctuation;
    false for any letter or digit of another script, control characters, or U+FFFD."""
    for char in text:
        if char.isascii():
            continue
        if char == _REPLACEMENT_CHAR:
            return False
        category = unicodedata.category(char)
        if category in _KEPT_CATEGORIES:
            continue
        if category.startswith("L") or category.startswith("M"):
            name = unicodedata.name(char, "")
            if name.startswith(_KEPT_LETTER_SCRIPTS) or category.startswith("M") and name.startswith("COMBINING"):
                continue
        return False
    return True


LANGUAGE_RULES: dict[str, tuple[Callable[[str], bool], str] | None] = {
    "ascii": (is_ascii, "non_ascii"),
    "script_aware": (is_latin_with_math, "other_script"),
    "none": None,
}


def language_drop_reason(text: str, rule: str) -> str | None:
    """The drop reason if `text` fails `rule`, else None."""
    if rule not in LANGUAGE_RULES:
        raise ValueError(f"unknown language rule '{rule}' (known: {', '.join(LANGUAGE_RULES)})")
    check = LANGUAGE_RULES[rule]
    if check is None:
        return None
    accept, reason = check
    return None if accept(text) else reason
