"""Refusing to train on too little data, with the reasons the rest was dropped."""
from __future__ import annotations

from typing import Sequence


def check_enough_data(kind: str, data: str | Sequence[str], minimum: int | None) -> None:
    """DPO needs `minimum` preference pairs, the difficulty scorer `minimum` labelled questions;
    raises an error that says how many there are and why the rest were dropped. QFT has no minimum."""
    if minimum is None:
        return
    if kind == "dpo":
        from ..stages.qpo import check_enough_pairs

        check_enough_pairs(data, minimum)
    elif kind == "scorer":
        from ..stages.difficulty import check_enough_labels

        check_enough_labels(data, minimum)
