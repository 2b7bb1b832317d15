"""Difficulty sampling, on the CPU: keep rates from all scores (`gather_scores`), their per-shard
application (`sample_shard`), and what the release reports of them (`difficulty_summary`)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..atomic import write_json_atomic
from ..keep_rule import KeepRates, histogram, keep_rates
from ..records import SAMPLED, SCORED, read_columns, read_shard
from ..stats import ShardStats, StatsError
from ..training.job import METRICS_FILE
from .shard_io import write_stage_table


def gather_scores(*, difficulty_paths: Sequence[str | Path], keep: Mapping[str, Any],
                  out: str | Path) -> dict[str, Any]:
    """Read every shard's scores (that column only), turn the keep rule into keep rates per bin,
    and write them with the histogram of all scores and the expected histogram after sampling."""
    columns = [read_columns(path, SCORED.stage, ["difficulty"]).column(0) for path in difficulty_paths]
    scores = pa.chunked_array(columns, pa.float64()).to_numpy() if columns else np.zeros(0)
    rates = keep_rates(scores, keep)
    expected = _expected_histogram(scores, rates, keep["bins"])
    summary = {"rule": dict(keep), "questions": int(len(scores)), "keep_rates": rates.to_json(),
               "bins": list(keep["bins"]), "histogram": histogram(scores, keep["bins"]),
               "expected_histogram": expected, "expected_kept": round(sum(expected), 1)}
    write_json_atomic(out, summary)
    return summary


def _expected_histogram(scores: np.ndarray, rates: KeepRates, bins: Sequence[float]) -> list[float]:
    """Expected kept count per histogram bin: each score contributes its keep rate."""
    weights = np.asarray(rates.rates)[rates.bin_of(scores)] if len(scores) else np.zeros(0)
    inner = np.asarray(bins[1:-1], dtype=np.float64)
    sums = np.bincount(np.searchsorted(inner, scores, side="right"), weights=weights, minlength=len(bins) - 1)
    return [round(float(value), 3) for value in sums]


def sample_drop_reason(rule: str) -> str:
    """The drop reason of the keep rule: thresholds drop the easiest questions; the distribution
    rule drops questions of bins holding more than their target share, easy or hard."""
    return "over_target_share" if rule == "distribution" else "too_easy"


def keep_rates_digest(keep_rates_path: str | Path) -> str:
    """What a sample shard records of the keep rates it applied, so that the release can tell a
    shard drawn with older rates (the rule reads them as `ancient`: re-gathering identical rates
    after one shard re-ran must not re-run every other shard)."""
    return hashlib.sha256(Path(keep_rates_path).read_bytes()).hexdigest()[:16]


def check_sampled_with(sample_stats: Mapping[tuple[str, str], Mapping[str, Any]], keep_rates_path: str | Path) -> None:
    """Raise StatsError naming the sample shards drawn with other keep rates than the current ones."""
    current = keep_rates_digest(keep_rates_path)
    stale = sorted(f"{gen}/{shard}" for (gen, shard), payload in sample_stats.items()
                   if payload.get("inputs", {}).get("keep_rates") != current)
    if stale:
        raise StatsError(f"{len(stale)} sample shard(s) were drawn with older keep rates than {keep_rates_path} "
                         f"(the difficulty scores changed since): {', '.join(stale[:10])}. Draw every shard again "
                         "with the new rates: `snakemake --forcerun respond` (sampling runs in the respond jobs).")


def sample_shard(*, generator: str, shard: str, difficulty_path: str | Path, keep_rates_path: str | Path,
                 seed: int, out: str | Path) -> ShardStats:
    """Keep each scored question with its bin's keep rate, drawn with this shard's seed."""
    table = read_shard(difficulty_path, SCORED)
    gathered = json.loads(Path(keep_rates_path).read_text(encoding="utf-8"))
    rates = KeepRates.from_json(gathered["keep_rates"])
    stats = ShardStats("sample", generator, shard, seed, {}, inputs={"keep_rates": keep_rates_digest(keep_rates_path)})
    kept = rates.keep_mask(table.column("difficulty").to_numpy(), np.random.default_rng(seed))
    stats.questions.keep(int(kept.sum()))
    stats.questions.drop(sample_drop_reason(gathered["rule"]["rule"]), int(len(kept) - kept.sum()))
    return write_stage_table(table.filter(pa.array(kept)), SAMPLED, out, stats)


def difficulty_summary(*, keep_rates_path: str | Path, sample_paths: Sequence[str | Path], scorer_dir: str | Path,
                       released: Sequence[float]) -> dict[str, Any]:
    """For the funnel and the card: the keep rule, histograms over its bins of every scored
    question, of the sampled ones and of the released ones, and the scorer's held-out metrics."""
    gathered = json.loads(Path(keep_rates_path).read_text(encoding="utf-8"))
    bins = gathered["bins"]
    columns = [read_columns(path, SAMPLED.stage, ["difficulty"]).column(0) for path in sample_paths]
    sampled = pa.chunked_array(columns, pa.float64()).to_numpy() if columns else np.zeros(0)
    metrics = json.loads((Path(scorer_dir) / METRICS_FILE).read_text(encoding="utf-8"))
    return {"rule": gathered["rule"]["rule"], "keep": gathered["rule"], "bins": bins,
            "scored": gathered["histogram"], "sampled": histogram(sampled, bins),
            "released": histogram(np.asarray(released, dtype=np.float64), bins),
            "scorer": {key: metrics.get(key) for key in SCORER_METRICS}}


SCORER_METRICS = ("train_questions", "held_out_questions", "truncated_questions", "held_out_mse_before",
                  "held_out_mse", "mean_predictor_mse", "held_out_pearson")
