"""Summaries of the released pairs' distributions (lengths, reward scores, best-of-n margins,
difficulty) for funnel.json, the dataset card and the report."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def describe(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Count, mean, min, max and the 5/25/50/75/95th percentiles (None where there are no values)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return {"count": 0, "mean": None, "min": None, **{f"p{round(q * 100)}": None for q in QUANTILES}, "max": None}
    quantiles = np.quantile(values, QUANTILES)
    return {"count": int(len(values)), "mean": round(float(values.mean()), 4), "min": round(float(values.min()), 4),
            **{f"p{round(q * 100)}": round(float(v), 4) for q, v in zip(QUANTILES, quantiles)},
            "max": round(float(values.max()), 4)}


def release_measures(table: pa.Table) -> pa.Table:
    """The few numbers per pair that the distributions describe: all a streaming release keeps of
    each row (about 40 bytes), not its text."""
    return pa.table({"question_chars": pc.utf8_length(table.column("question")),
                     "response_chars": pc.utf8_length(table.column("response")),
                     **{name: table.column(name) for name in ("score", "margin", "difficulty")}})


def describe_measures(measures: pa.Table) -> dict[str, dict[str, Any]]:
    """Per measure (release_measures' columns, of every released pair): its description. Margins and
    difficulty leave out the pairs that have none."""
    def present(name: str) -> np.ndarray:
        column = measures.column(name)
        return pc.drop_null(column).to_numpy() if len(column) else np.zeros(0)

    return {name: describe(present(name)) for name in measures.column_names}


def release_distributions(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per measure of the released pairs: its description. Lengths are in characters; margins and
    difficulty leave out the pairs that have none."""
    return describe_measures(release_measures(table))
