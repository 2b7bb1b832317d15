"""Progress bars with rates: live on a terminal, a line every few seconds in job logs."""
from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, desc: str, total: int | None = None, unit: str = "it") -> tqdm:
    """A tqdm bar that refreshes every 0.1 s on a terminal and every 15 s in a log file."""
    interactive = sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=interactive,
                mininterval=0.1 if interactive else 15.0)
