"""Model-free similarity that survives rephrasing: a question said in other words keeps its
quantities and its mathematics, and much of its content words.

A text's features are of three kinds, weighted by TF-IDF with one benchmark's items as the
documents (an index per benchmark, so that a verdict against it depends on it alone):
- numbers: digits or number words ("1,000" = "1000", "3.50" = "3.5", "twelve" = "dozen" = "12");
- math: inside $...$, LaTeX commands, operators and single-letter variables, and every pair of
  adjacent math tokens (a pair holding a number counts as a number);
- words: content words outside math, stop words dropped, lightly stemmed.
Two texts are compared by cosines over groups of kinds: `signature` (numbers and math), `words`,
`joint` (everything) and `text` (everything but the numbers: high for the same problem text with
other numbers). Retrieval: a question's candidates are the items that share its rarest features;
they are ranked by the joint cosine and the top k kept with their scores. Everything is plain
Python and numpy: per question a regex pass and dictionary lookups, then sparse dot products.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .arrays import concatenated_ranges, run_starts

NUMBERS, MATH, WORDS = 0, 1, 2  # feature kinds
_KINDS = (NUMBERS, MATH, WORDS)
RETRIEVE_BY = 6  # a question's rarest features per search that find its candidates
CANDIDATES_PER_RESULT = 2  # candidates scored in full per result kept
_DENSE_CELLS = 4_000_000  # questions x vocabulary laid out dense at once (8 bytes each)
# Benchmark items looked at per search (two per question) for candidates: 1 in POSTINGS_SHARE of the
# benchmark's items, at least POSTINGS_PER_SEARCH (192 of the five test sets' 10,312 items when they
# were one index: about 1 in 50).
POSTINGS_PER_SEARCH = 48
POSTINGS_SHARE = 50

_NUMBER_WORDS = {word: str(value) for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
                      "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000", "dozen": "12",
                      "twice": "2", "double": "2", "triple": "3", "half": "1/2"})
_STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just let me more most my myself no nor not now of off on once only or
other our ours out over own same she should so some such than that the their theirs them themselves then there these
they this those through to too under until up us very was we were what when where which while who whom why will with
would you your yours find many much given suppose value what's
""".split())
# Math-mode letters that are LaTeX's own formatting, not variables.
_LATEX_NOISE = frozenset({"\\left", "\\right", "\\displaystyle", "\\text", "\\mbox", "\\mathrm", "\\qquad", "\\quad"})
_LATEX_SAME = {"\\dfrac": "\\frac", "\\tfrac": "\\frac", "\\le": "\\leq", "\\ge": "\\geq", "\\neq": "\\ne"}

_MATH_SPLIT = re.compile(r"\$\$?|\\\(|\\\)|\\\[|\\\]")
_PROSE = re.compile(r"[a-z]{2,}\s+[a-z]{2,}")
_TEXT_COMMAND = re.compile(r"\\(?:text|mbox|mathrm|textbf)\s*\{[^}]*\}")
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # 1,000,000 is one number; f(1,2) two
_PROSE_TOKEN = re.compile(r"[a-z]+|\d[\d,.]*")  # "1,000" and "3.5" whole; _number drops commas and a final "."
_MATH_TOKEN = re.compile(_NUMBER + r"|\\[a-z]+|[a-z]|[-+*/=<>^!|]")
_SUFFIXES = ("ies", "es", "s", "ed", "ing", "ly")


def _number(token: str) -> str:
    """A number's one spelling: no thousands commas, no trailing zeros after the point, no leading zeros."""
    token = token.replace(",", "").rstrip(".")
    if "." in token:
        token = token.rstrip("0").rstrip(".")
    return token.lstrip("0") or "0"


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _kind(name: str) -> int:
    """A number, or a math pair with a number in it; other math; a word."""
    return NUMBERS if "#" in name else MATH if name[0] == "$" else WORDS


class _ProseNames(dict):
    """Prose token → feature name ("#12" a number, else a word stem; None: a stop word), computed
    once per distinct token: a dictionary lookup for every token after the first."""

    def __missing__(self, token: str) -> str | None:
        if token[0].isdigit():
            name = "#" + _number(token)
        elif token in _STOP_WORDS or len(token) < 3:
            name = None
        else:
            stem = _stem(token)
            number = _NUMBER_WORDS.get(token) or _NUMBER_WORDS.get(stem)
            name = "#" + number if number else stem
        self[token] = name
        return name


class _MathNames(dict):
    """Math token → feature name ("#12" a number, "$\\frac" other math; None: layout only)."""

    def __missing__(self, token: str) -> str | None:
        if token[0].isdigit():
            name = "#" + _number(token)
        else:
            name = None if token in _LATEX_NOISE else "$" + _LATEX_SAME.get(token, token)
        self[token] = name
        return name


_PROSE_NAMES, _MATH_NAMES = _ProseNames(), _MathNames()


def _math_segments(text: str) -> list[tuple[bool, str]]:
    """The text cut into (is math, segment). A `$...$` span counts as math unless it reads as prose
    (two words in a row outside `\\text{}`): in word problems `$` is a currency sign."""
    if "$" not in text and "\\" not in text:
        return [(False, text)]
    parts = _MATH_SPLIT.split(text.replace("\\$", " "))
    segments: list[tuple[bool, str]] = []
    for number, part in enumerate(parts):
        is_math = number % 2 == 1 and not _PROSE.search(_TEXT_COMMAND.sub(" ", part))
        segments.append((is_math, part if is_math or number % 2 == 0 else "$" + part + "$"))
    return segments


def features(text: str) -> list[str]:
    """The text's feature names in order. In math, each token and each pair of adjacent tokens is a
    feature, so that an expression counts as a whole, not only as its letters."""
    text = unicodedata.normalize("NFKC", text).casefold()
    found: list[str | None] = []
    for is_math, segment in _math_segments(text):
        if is_math:
            tokens = [name for name in map(_MATH_NAMES.__getitem__, _MATH_TOKEN.findall(segment)) if name is not None]
            found.extend(tokens)
            found.extend(first + " " + second for first, second in zip(tokens, tokens[1:]))
        else:
            found.extend(map(_PROSE_NAMES.__getitem__, _PROSE_TOKEN.findall(segment)))
    return [name for name in found if name is not None]


@dataclass(frozen=True)
class Counts:
    """Many texts' features, counted once for every index they are weighed by: text `texts[j]` has
    feature `names[name_ids[j]]` (of kind `name_kinds[name_ids[j]]`) `counts[j]` times, each text's
    features in the order they first appear; `size` texts in all."""

    size: int
    texts: np.ndarray
    name_ids: np.ndarray
    counts: np.ndarray
    names: list[str]
    name_kinds: np.ndarray

    @classmethod
    def of(cls, texts: Sequence[str]) -> "Counts":
        """The features (`features`) of every text, counted."""
        rows, name_ids, counts = [], [], []
        number: dict[str, int] = {}
        for row, text in enumerate(texts):
            counted: dict[str, int] = {}
            for name in features(text):
                counted[name] = counted.get(name, 0) + 1
            rows.extend([row] * len(counted))
            name_ids.extend(number.setdefault(name, len(number)) for name in counted)
            counts.extend(counted.values())
        names = list(number)
        return cls(len(texts), np.array(rows, dtype=np.int64), np.array(name_ids, dtype=np.int64),
                   np.array(counts, dtype=np.float64), names,
                   np.fromiter(map(_kind, names), dtype=np.int8, count=len(names)))


@dataclass(frozen=True)
class Bags:
    """Weighted features of many texts, flat: text `texts[j]` has feature `ids[j]` (an index into
    the vocabulary, -1 for one the benchmark never uses) of kind `kinds[j]` with TF-IDF weight
    `weights[j]`; `norms[t, kind]` is text t's vector length per kind."""

    texts: np.ndarray
    ids: np.ndarray
    kinds: np.ndarray
    weights: np.ndarray
    norms: np.ndarray


@dataclass(frozen=True)
class Scores:
    """Top-k benchmark items per question: `items[q, r]` is question q's r-th nearest item (-1 when
    fewer items share a feature with it), with its cosines per kind."""

    items: np.ndarray  # int64 [questions, k]
    signature: np.ndarray  # float64 [questions, k]: numbers and math
    words: np.ndarray  # float64 [questions, k]: content words
    joint: np.ndarray  # float64 [questions, k]: every feature
    text: np.ndarray  # float64 [questions, k]: every feature but the numbers (a number variant's is high)
    numbers: np.ndarray  # float64 [questions, k]: the numbers alone (1 when neither text has any)


class LexicalIndex:
    """One benchmark's items' feature bags as postings (for each feature, the items that have it and
    their weights), with the vocabulary and the inverse document frequencies over those items alone:
    what another benchmark holds never changes a score against this one."""

    ARRAYS = ("vocabulary", "idf", "posting_starts", "posting_items", "posting_weights", "norms")  # as saved

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, posting_starts: np.ndarray,
                 posting_items: np.ndarray, posting_weights: np.ndarray, norms: np.ndarray) -> None:
        self.names = list(vocabulary)
        self.vocabulary = {name: number for number, name in enumerate(self.names)}
        self.kinds = np.array([_kind(name) for name in self.names], dtype=np.int8)
        self.idf, self.norms = idf, norms
        self.size = len(norms)
        self.unseen_idf = float(np.log(1 + self.size) + 1.0)  # a feature no item has: as rare as can be
        self.postings_per_search = max(POSTINGS_PER_SEARCH, self.size // POSTINGS_SHARE)
        self.posting_starts, self.posting_items, self.posting_weights = posting_starts, posting_items, posting_weights
        # The same weights item by item: item i's features are item_features[item_starts[i]:item_starts[i + 1]].
        feature_of_posting = np.repeat(np.arange(len(self.names)), np.diff(posting_starts))
        by_item = np.argsort(posting_items, kind="stable")
        self.item_features, self.item_weights = feature_of_posting[by_item], posting_weights[by_item]
        self.item_kinds = self.kinds[self.item_features]
        self.item_starts = np.searchsorted(posting_items[by_item], np.arange(self.size + 1))

    @classmethod
    def build(cls, items: Sequence[str]) -> "LexicalIndex":
        counted = Counts.of(items)
        vocabulary = sorted(counted.names)
        present = np.bincount(counted.name_ids, minlength=len(counted.names))  # a row is one item's distinct feature
        number = {name: position for position, name in enumerate(counted.names)}
        idf = np.log((1 + len(items)) / (1 + present[[number[name] for name in vocabulary]])) + 1.0
        index = cls(vocabulary, idf, np.zeros(len(vocabulary) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                    np.zeros(0), np.zeros((len(items), len(_KINDS))))
        bags = index.bags(counted)
        order = np.lexsort((bags.texts, bags.ids))
        starts = np.searchsorted(bags.ids[order], np.arange(len(vocabulary) + 1))
        return cls(vocabulary, idf, starts, bags.texts[order], bags.weights[order], bags.norms)

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as arrays named ARRAYS, in the order LexicalIndex takes them (the vocabulary as strings)."""
        return dict(zip(self.ARRAYS, (np.array(self.names, dtype=str), self.idf, self.posting_starts,
                                      self.posting_items, self.posting_weights, self.norms)))

    def bags(self, counted: Counts) -> Bags:
        """TF-IDF bags of counted texts by this index's weights: term frequency 1 + log(count)."""
        known = np.fromiter((self.vocabulary.get(name, -1) for name in counted.names), dtype=np.int64,
                            count=len(counted.names))
        ids, kinds = known[counted.name_ids], counted.name_kinds[counted.name_ids]
        idf = np.where(ids >= 0, self.idf[np.maximum(ids, 0)] if len(self.idf) else 0.0, self.unseen_idf)
        weights = (1.0 + np.log(counted.counts)) * idf
        norms = np.zeros((counted.size, len(_KINDS)))
        np.add.at(norms, (counted.texts, kinds), weights ** 2)
        return Bags(counted.texts, ids, kinds, weights, np.sqrt(norms))

    def nearest(self, questions: Counts, k: int) -> Scores:
        """The k items nearest to each question, by the joint cosine. Candidates are
        the items that share one of the question's `RETRIEVE_BY` rarest features, the best
        `CANDIDATES_PER_RESULT` × k of them by those features' dot product; they are then scored in full."""
        k = max(1, min(k, self.size))
        bags = self.bags(questions)
        pair_question, pair_item = self._candidates(bags, questions.size, CANDIDATES_PER_RESULT * k)
        dots = self._dots(bags, pair_question, pair_item)
        q_norms, i_norms = bags.norms[pair_question], self.norms[pair_item]

        def cosine(*kinds: int) -> np.ndarray:
            """The cosine of the pair's vectors restricted to these kinds of features."""
            lengths = np.sqrt((q_norms[:, kinds] ** 2).sum(axis=1) * (i_norms[:, kinds] ** 2).sum(axis=1))
            return sum(dots[kind] for kind in kinds) / np.maximum(lengths, 1e-12)

        joint = cosine(*_KINDS)
        order = _best_first(pair_question, joint)
        rank = _rank_in_group(pair_question[order])
        keep = order[rank < k]
        rows, columns = pair_question[keep], rank[rank < k]
        scores = Scores(np.full((questions.size, k), -1, dtype=np.int64),
                        *(np.zeros((questions.size, k)) for _ in range(5)))
        scores.items[rows, columns] = pair_item[keep]
        scores.joint[rows, columns] = joint[keep]
        scores.signature[rows, columns] = cosine(NUMBERS, MATH)[keep]
        scores.words[rows, columns] = cosine(WORDS)[keep]
        scores.text[rows, columns] = cosine(MATH, WORDS)[keep]
        # Two texts without numbers agree on their (no) quantities.
        numberless = (q_norms[:, NUMBERS] == 0) & (i_norms[:, NUMBERS] == 0)
        scores.numbers[rows, columns] = np.where(numberless, 1.0, cosine(NUMBERS))[keep]
        return scores

    def _candidates(self, bags: Bags, questions: int, per_question: int) -> tuple[np.ndarray, np.ndarray]:
        """(question, item) pairs to score, sorted by question: per question the items sharing its
        rarest features, taken rarest first while they stay within `postings_per_search` items (the
        rarest one within 4 times that), the best `per_question` of them by those features' dot product. Each
        question searches twice, by its numbers and by its other features, so that a rephrasing
        (the same numbers) and a number variant (the same words and math) both find their item."""
        known = np.flatnonzero(bags.ids >= 0)
        search = bags.texts[known] * 2 + (bags.kinds[known] != NUMBERS)
        by_search = np.argsort(search, kind="stable")
        known, search = known[by_search], search[by_search]
        rarest = _best_first(search, self.idf[bags.ids[known]])
        order, search = known[rarest], search[rarest]
        lengths = self.posting_starts[bags.ids[order] + 1] - self.posting_starts[bags.ids[order]]
        groups = _group_starts(search)
        before = np.cumsum(lengths) - lengths
        before -= np.repeat(before[groups], np.diff(np.append(groups, len(order))))  # postings of rarer features
        rank = np.arange(len(order)) - np.repeat(groups, np.diff(np.append(groups, len(order))))
        use = (rank < RETRIEVE_BY) & (before + lengths <= self.postings_per_search)
        use |= (rank == 0) & (lengths <= 4 * self.postings_per_search)  # a search's rarest feature, unless everywhere
        order, lengths = order[use], lengths[use]
        postings = concatenated_ranges(self.posting_starts[bags.ids[order]], lengths)
        keys = np.repeat(bags.texts[order] * self.size, lengths) + self.posting_items[postings]
        products = np.repeat(bags.weights[order], lengths) * self.posting_weights[postings]
        order = np.argsort(keys, kind="stable")
        keys, products = keys[order], products[order]
        starts = np.flatnonzero(run_starts(keys))
        partial = np.add.reduceat(products, starts) if len(keys) else products
        pair_question = keys[starts] // self.size
        pair_item = keys[starts] - pair_question * self.size
        order = _best_first(pair_question, partial)
        order = order[_rank_in_group(pair_question[order]) < per_question]
        return pair_question[order], pair_item[order]

    def _dots(self, bags: Bags, pair_question: np.ndarray, pair_item: np.ndarray) -> list[np.ndarray]:
        """Per kind, the dot product of each (question, item) pair's bags (pairs sorted by question).
        Per block of questions their weights are laid out dense over the vocabulary, so that each
        item feature of a pair is one array read."""
        dots = [np.zeros(len(pair_question)) for _ in _KINDS]
        known = bags.ids >= 0
        question_rows = np.searchsorted(bags.texts, np.arange(len(bags.norms) + 1))
        pair_rows = np.searchsorted(pair_question, np.arange(len(bags.norms) + 1))
        block = max(1, _DENSE_CELLS // max(1, len(self.names)))
        dense = np.zeros((block, len(self.names)))
        for start in range(0, len(bags.norms), block):
            stop = min(start + block, len(bags.norms))
            rows = slice(question_rows[start], question_rows[stop])
            local, ids = bags.texts[rows][known[rows]] - start, bags.ids[rows][known[rows]]
            dense[local, ids] = bags.weights[rows][known[rows]]
            pairs = slice(pair_rows[start], pair_rows[stop])
            items = pair_item[pairs]
            lengths = self.item_starts[items + 1] - self.item_starts[items]
            at = concatenated_ranges(self.item_starts[items], lengths)
            cells = np.repeat((pair_question[pairs] - start) * len(self.names), lengths)
            cells += self.item_features[at]
            products = dense.take(cells)
            products *= self.item_weights[at]
            # One sum per pair and kind: pair p's kind-k products add up in bin 3p + k.
            bins = np.repeat(np.arange(0, len(_KINDS) * len(items), len(_KINDS)), lengths)
            bins += self.item_kinds[at]
            by_kind = np.bincount(bins, products, minlength=len(_KINDS) * len(items)).reshape(-1, len(_KINDS))
            for kind in _KINDS:
                dots[kind][pairs] = by_kind[:, kind]
            dense[local, ids] = 0.0
        return dots


def _group_starts(groups: np.ndarray) -> np.ndarray:
    """Where each run of equal values begins (`groups` sorted)."""
    return np.flatnonzero(run_starts(groups)) if len(groups) else np.zeros(0, dtype=np.int64)


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal `groups` values (rows sorted by group)."""
    starts = _group_starts(groups)
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.append(starts, len(groups))))


def _best_first(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The order that keeps the (sorted) groups and puts each group's largest positive values first,
    ties in their present order. One stable sort of group + a share of the group's maximum (in [0, 0.5))."""
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = _group_starts(groups)
    peak = np.repeat(np.maximum.reduceat(values, starts), np.diff(np.append(starts, len(groups))))
    return np.argsort(groups + 0.5 * (1.0 - values / np.maximum(peak, 1e-300)), kind="stable")
