"""Stage 4c, difficulty: fail-rate labels on the seed questions (`label_shard`), scores for every
question that passed the filters (`score_shard`), keep rates from all scores (`gather_scores`),
and their per-shard application (`sample_shard`)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..atomic import write_json_atomic
from ..difficulty import KeepRates, histogram, keep_rates
from ..engines import Sampling, open_generator, open_scorer
from ..grading import gold_answer, gold_drop_reason, grade
from ..models import ModelSpec
from ..prompts import response_messages
from ..records import DIFFICULTY, LABELS, SAMPLED, SOLVABLE, question_columns, read_columns, read_shard
from ..seeds import read_seeds
from ..stats import Funnel, ShardStats, StatsError, drop_summary, stats_path, summed_funnel
from ..training.worker import METRICS_FILE
from .shard_io import write_stage_outputs, write_stage_table

LABEL_GENERATOR = "seeds"  # the generator name label shards carry in their sidecars


class TooFewLabelsError(RuntimeError):
    """Not enough labelled seed questions to train the scorer; the message says why the rest dropped."""


def label_shard(*, part: str, seeds_path: str | Path, first: int, count: int, solver: ModelSpec, k: int,
                sampling: Mapping[str, Any], seed: int, out: str | Path) -> ShardStats:
    """The solver answers seed questions [first, first + count) `k` times each; a question's fail
    rate is the share of answers that are not judged equal to its gold answer (cut off and
    answerless ones included). Questions without a usable gold answer are dropped and counted."""
    seeds = read_seeds(seeds_path)[first:first + count]
    stats = ShardStats("difficulty_labels", LABEL_GENERATOR, part, seed, {"solver": solver.describe()},
                       responses=Funnel(unit="response"))
    graded = []
    for offset, row in enumerate(seeds):
        reason = "no_gold" if row["answer"] is None else gold_drop_reason(row["answer"], row["answer_format"])
        if reason:
            stats.questions.drop(reason)
        else:
            graded.append((first + offset, {**row, "gold": gold_answer(row["answer"], row["answer_format"])}))
    labels = []
    if graded:
        with open_generator(solver, seed) as engine:
            prompts = [engine.render_chat(response_messages(row["question"]), add_generation_prompt=True)
                       for _, row in graded]
            results = engine.generate(prompts, Sampling.from_config(sampling, n=k, seed=seed))
        for (index, row), completions in zip(graded, results):
            if completions is None:
                stats.questions.drop("prompt_too_long")
                continue
            correct = 0
            for completion in completions:
                stats.counters["generated_tokens"] += completion.tokens
                outcome = grade(completion.text, row["gold"]) if completion.finished else "truncated"
                stats.counters[f"answers_{outcome}"] += 1
                stats.responses.keep()
                correct += outcome == "correct"
            stats.questions.keep()
            labels.append({"id": f"seeds-{index}", "source": row["source"], "question": row["question"],
                           "gold": row["gold"], "correct": correct, "samples": len(completions),
                           "fail_rate": 1.0 - correct / len(completions), "solver_model": solver.describe()})
    return write_stage_outputs(labels, LABELS, out, stats)


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


def score_shard(*, generator: str, shard: str, questions_path: str | Path, scorer: ModelSpec, seed: int,
                out: str | Path) -> ShardStats:
    """The scorer's predicted fail rate for every question of a filter shard (nothing is dropped;
    questions longer than the scorer's context are cut and counted as `truncated_inputs`)."""
    table = question_columns(read_shard(questions_path, SOLVABLE))
    stats = ShardStats("difficulty", generator, shard, seed, {"difficulty": scorer.describe()})
    scores: list[float] = []
    if table.num_rows:
        with open_scorer(scorer, seed) as engine:
            scores, truncated = engine.score_texts(table.column("question").to_pylist())
        stats.counters["truncated_inputs"] += truncated
    table = table.set_column(table.schema.get_field_index("difficulty"), "difficulty", pa.array(scores, pa.float64()))
    table = table.append_column("difficulty_model", pa.array([scorer.describe()] * table.num_rows, pa.string()))
    stats.questions.keep(table.num_rows)
    return write_stage_table(table.cast(DIFFICULTY.schema), DIFFICULTY, out, stats)


def gather_scores(*, difficulty_paths: Sequence[str | Path], keep: Mapping[str, Any], out: str | Path) -> dict[str, Any]:
    """Read every shard's scores (that column only), turn the keep rule into keep rates per bin,
    and write them with the histogram of all scores and the expected histogram after sampling."""
    columns = [read_columns(path, DIFFICULTY.stage, ["difficulty"]).column(0) for path in difficulty_paths]
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
                         f"(the difficulty scores changed since): {', '.join(stale[:10])}. Draw every shard again with the new "
                         "rates: `snakemake --forcerun respond` (sampling runs in the respond jobs).")


def sample_shard(*, generator: str, shard: str, difficulty_path: str | Path, keep_rates_path: str | Path,
                 seed: int, out: str | Path) -> ShardStats:
    """Keep each scored question with its bin's keep rate, drawn with this shard's seed."""
    table = read_shard(difficulty_path, DIFFICULTY)
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
