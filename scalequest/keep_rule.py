"""Difficulty sampling: from every scored question's predicted fail rate, a keep rule becomes
keep rates per score bin (computed once over all shards), which each shard then applies with
its own seed. Histograms for the report and the card use the same bins."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

# The settings of `difficulty.keep` each rule reads, besides `bins` (the histograms read those).
RULE_READS = {"none": (), "min_score": ("min_score",), "count": ("count",), "distribution": ("distribution", "count")}


class KeepRuleError(ValueError):
    """The keep rule in the config cannot be applied; the message names the key."""


@dataclass(frozen=True)
class KeepRates:
    """Keep probability per bin: scores in [edges[i], edges[i+1]) are kept with rates[i]. The
    outer edges are -inf and +inf, so every score falls in a bin."""

    edges: tuple[float, ...]
    rates: tuple[float, ...]

    def bin_of(self, scores: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges[1:-1]), scores, side="right")

    def keep_mask(self, scores: Sequence[float], rng: np.random.Generator) -> np.ndarray:
        """Which scores are kept: one uniform draw per score (drawn for every score, so a
        shard's draws do not depend on the rates) against its bin's rate."""
        scores = np.asarray(scores, dtype=np.float64)
        draws = rng.random(len(scores))
        return draws < np.asarray(self.rates)[self.bin_of(scores)]

    def to_json(self) -> dict[str, Any]:
        return {"edges": [_json_edge(e) for e in self.edges], "rates": list(self.rates)}

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> "KeepRates":
        return cls(tuple(float(e) for e in payload["edges"]), tuple(float(r) for r in payload["rates"]))


def _json_edge(edge: float) -> float | str:
    return edge if np.isfinite(edge) else ("-inf" if edge < 0 else "inf")


def histogram(scores: Sequence[float], bins: Sequence[float]) -> list[int]:
    """Counts per bin of `bins` (edges); scores below the first edge count in the first bin,
    scores at or above the last edge in the last bin."""
    scores = np.asarray(scores, dtype=np.float64)
    inner = np.asarray(bins[1:-1], dtype=np.float64)
    return np.bincount(np.searchsorted(inner, scores, side="right"), minlength=len(bins) - 1).tolist()


def keep_rates(scores: Sequence[float], keep: Mapping[str, Any]) -> KeepRates:
    """The keep rates the config's rule (`difficulty.keep`) asks for, given every score."""
    scores = np.asarray(scores, dtype=np.float64)
    rule = keep["rule"]
    if rule == "none":
        return KeepRates((-np.inf, np.inf), (1.0,))
    if rule == "min_score":
        return KeepRates((-np.inf, float(keep["min_score"]), np.inf), (0.0, 1.0))
    if rule == "count":
        return _hardest(scores, _count(keep, "count"))
    if rule == "distribution":
        return _distribution(scores, keep)
    raise KeepRuleError(f"invalid config at 'difficulty.keep.rule': unknown rule '{rule}'")


def _count(keep: Mapping[str, Any], rule: str) -> int:
    if keep.get("count") is None:
        raise KeepRuleError(f"invalid config at 'difficulty.keep.count': rule {rule} needs a count")
    return int(keep["count"])


def _hardest(scores: np.ndarray, count: int) -> KeepRates:
    """Keep the `count` highest scores: everything above the count-th highest score, and at that
    score the share of the tied questions that makes up the count (all when there are fewer)."""
    if count >= len(scores):
        return KeepRates((-np.inf, np.inf), (1.0,))
    threshold = float(np.sort(scores)[::-1][count - 1])
    above = int(np.sum(scores > threshold))
    tied = int(np.sum(scores == threshold))
    upper = float(np.nextafter(threshold, np.inf))
    return KeepRates((-np.inf, threshold, upper, np.inf), (0.0, (count - above) / tied, 1.0))


def _distribution(scores: np.ndarray, keep: Mapping[str, Any]) -> KeepRates:
    """Per-bin rates that make the kept scores follow the target shares: the largest total the
    bins can supply (the bin shortest of its share limits it), capped at `count` when set."""
    bins, target = list(keep["bins"]), keep.get("distribution")
    if target is None or len(target) != len(bins) - 1:
        raise KeepRuleError(f"invalid config at 'difficulty.keep.distribution': rule distribution needs one "
                            f"share per bin ({len(bins) - 1} for bins {bins}), got {target}")
    _check_bins(bins)
    shares = np.asarray(target, dtype=np.float64)
    if shares.sum() <= 0:
        raise KeepRuleError("invalid config at 'difficulty.keep.distribution': the shares sum to 0")
    shares = shares / shares.sum()
    counts = np.asarray(histogram(scores, bins), dtype=np.float64)
    wanted = shares > 0
    total = float(np.min(counts[wanted] / shares[wanted])) if len(scores) else 0.0
    if keep.get("count") is not None:
        total = min(total, float(keep["count"]))
    rates = np.where(counts > 0, np.minimum(1.0, total * shares / np.maximum(counts, 1)), 0.0)
    edges = (-np.inf, *[float(edge) for edge in bins[1:-1]], np.inf)
    return KeepRates(edges, tuple(float(rate) for rate in rates))


def _check_bins(bins: Sequence[float]) -> None:
    for lower, upper in zip(bins, bins[1:]):
        if not lower < upper:
            raise KeepRuleError(f"invalid config at 'difficulty.keep.bins': edges must increase, got {list(bins)} "
                                f"({upper} follows {lower})")


def check_keep_rule(keep: Mapping[str, Any]) -> None:
    """Raise KeepRuleError for a rule the config cannot apply, before any job runs."""
    _check_bins(keep["bins"])  # every rule's histograms use them
    if keep["rule"] == "count":
        _count(keep, "count")
    else:
        keep_rates(np.zeros(0), keep)
