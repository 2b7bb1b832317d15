"""Refusing to train on too little data, with the reasons the rest was dropped. Reads only the
stats sidecars, so that the training environment needs neither the engines nor the grader."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..stats import drop_summary, stats_path, summed_funnel


class TooFewPairsError(RuntimeError):
    """Not enough valid preference pairs to train on; the message says why the rest dropped."""


class TooFewLabelsError(RuntimeError):
    """Not enough labelled seed questions to train the scorer; the message says why the rest dropped."""


def check_enough_pairs(pairs_path: str | Path, min_pairs: int) -> int:
    """The number of pairs, or TooFewPairsError saying how many were found and why the rest
    of the sampled questions were dropped."""
    funnel = summed_funnel([stats_path(pairs_path)])
    if funnel.kept >= min_pairs:
        return funnel.kept
    raise TooFewPairsError(
        f"{pairs_path}: {funnel.kept} valid preference pairs from {funnel.total} sampled questions, fewer than "
        f"qpo.min_pairs = {min_pairs}. Dropped: {drop_summary(funnel)}. Check the optimizer's replies "
        "(optimizer_reply in the pairs shard, or the answer cache) or sample more questions (qpo.samples).")


def check_enough_labels(label_paths: Sequence[str | Path], min_labels: int) -> int:
    """The number of labelled questions, or TooFewLabelsError saying how many there are and why
    the other seed questions were dropped."""
    funnel = summed_funnel(stats_path(path) for path in label_paths)
    if funnel.kept >= min_labels:
        return funnel.kept
    raise TooFewLabelsError(
        f"{len(label_paths)} label shard(s) hold {funnel.kept} labelled seed questions of {funnel.total}, fewer than "
        f"difficulty.labels.min_labels = {min_labels}. Dropped: {drop_summary(funnel)}. no_gold: the source has "
        "no answer_field or the record no answer; unparsable_gold: its answer cannot be read as math.")


def check_enough_data(kind: str, data: str | Sequence[str], minimum: int | None) -> None:
    """DPO needs `minimum` preference pairs, the difficulty scorer `minimum` labelled questions;
    raises an error that says how many there are and why the rest were dropped. QFT has no minimum."""
    if minimum is None:
        return
    if kind == "qpo":
        check_enough_pairs(data, minimum)
    elif kind == "scorer":
        check_enough_labels(data, minimum)
