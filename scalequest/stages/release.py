"""Stage 6: merge every generator's pairs, drop duplicates, near-duplicates and benchmark
questions (as decided by the dedup and decontaminate rules), deterministic shuffle, Parquet files,
the dataset card, funnel.json and contamination.jsonl."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..atomic import atomic_dir, write_json_atomic, write_text_atomic
from ..card import render_card
from ..distributions import release_distributions
from ..funnel import SHARD_STAGES, check_chain, load_stage_stats, models_used, summarize
from ..records import BEST, RELEASE, read_shard
from ..stats import Funnel, StatsError
from .decontaminate import MATCHES
from .dedup import read_duplicates
from .sample import check_sampled_with, difficulty_summary


def contamination_reason(benchmark: str) -> str:
    return f"contaminated:{benchmark}"


def attribute_contamination(matches: pa.Table, benchmarks: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """{question id: its matches, the one it is dropped for first}: the highest overlap, then the
    benchmark first in `benchmarks` (the config's, by name)."""
    order = {name: position for position, name in enumerate(benchmarks)}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for match in matches.to_pylist():
        by_id.setdefault(match.pop("id"), []).append(match)
    for found in by_id.values():
        found.sort(key=lambda match: (-match["overlap"], order[match["benchmark"]]))
    return by_id


def drop_reasons(ids: Sequence[str], duplicates: pa.Table,
                 contamination: Mapping[str, list[dict[str, Any]]]) -> list[str | None]:
    """Each row's drop reason, None for kept rows. Exact duplicates first, then near-duplicates
    (both from the dedup rule), then contamination of the rows still kept."""
    duplicate_reason = dict(zip(duplicates.column("id").to_pylist(), duplicates.column("reason").to_pylist()))
    reasons = []
    for row_id in ids:
        reason = duplicate_reason.get(row_id)
        if reason is None and row_id in contamination:
            reason = contamination_reason(contamination[row_id][0]["benchmark"])
        reasons.append(reason)
    return reasons


def shuffle(table: pa.Table, seed: int) -> pa.Table:
    """A seeded permutation of rows first sorted by id, so input order never matters."""
    table = table.sort_by("id")
    return table.take(np.random.default_rng(seed).permutation(table.num_rows))


def write_parquet_files(table: pa.Table, data_dir: str | Path, rows_per_file: int) -> list[str]:
    """train-XXXXX-of-YYYYY.parquet files in a directory that appears atomically."""
    count = max(1, -(-table.num_rows // rows_per_file))
    names = []
    with atomic_dir(data_dir) as tmp:
        for index in range(count):
            name = f"train-{index:05d}-of-{count:05d}.parquet"
            piece = table.slice(index * rows_per_file, rows_per_file).replace_schema_metadata(RELEASE.metadata())
            pq.write_table(piece, tmp / name, compression="zstd")
            names.append(name)
    return names


def release(*, best_paths: Sequence[str | Path], stats_paths: Mapping[str, Sequence[str | Path]],
            duplicates_path: str | Path, contamination_paths: Sequence[str | Path],
            benchmarks_path: str | Path | None, absent_benchmarks: Mapping[str, str], seed: int,
            rows_per_file: int, name: str, settings: Mapping[str, Any], data_dir: str | Path, card_path: str | Path,
            funnel_path: str | Path, contamination_out: str | Path,
            difficulty: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the release; returns the funnel written to `funnel_path`. Without `benchmarks_path`
    (decontamination off) nothing is dropped as contaminated; `absent_benchmarks` ({name: path}) are
    the optional benchmarks left out because their file was not there. `difficulty` (when scoring is on)
    names the gathered keep rates, the sample shards and the scorer's folder, for the
    difficulty histograms before and after sampling."""
    loaded = load_stage_stats(stats_paths)
    stages = [stage for stage in SHARD_STAGES if stage in loaded]
    check_chain(loaded, stages)
    tables = [read_shard(path, BEST) for path in best_paths]
    merged = pa.concat_tables(tables) if tables else BEST.schema.empty_table()
    last_kept = sum(payload["questions"].kept for payload in loaded[stages[-1]].values())
    if merged.num_rows != last_kept:
        raise StatsError(f"the {stages[-1]} shards hold {merged.num_rows} pairs but their sidecars say {last_kept}")
    summary = json.loads(Path(benchmarks_path).read_text(encoding="utf-8")) if benchmarks_path else {"benchmarks": []}
    benchmarks = [benchmark["name"] for benchmark in summary["benchmarks"]]
    contamination = attribute_contamination(_read_matches(contamination_paths), benchmarks)
    reasons = drop_reasons(merged.column("id").to_pylist(), read_duplicates(duplicates_path, merged.num_rows),
                           contamination)
    release_funnel = _release_funnel(reasons, benchmarks)
    final = shuffle(merged.filter(pa.array([reason is None for reason in reasons])), seed)
    files = write_parquet_files(final, data_dir, rows_per_file)
    funnel = {
        "stages": summarize(loaded, stages) + [{"stage": "release", "questions": release_funnel.to_json()}],
        "released_pairs": final.num_rows,
        "files": [f"data/{file}" for file in files],
        "models": models_used(loaded),
        "decontamination": {**_contamination_counts(summary, contamination, release_funnel.dropped),
                            "absent": dict(absent_benchmarks)},
        "distributions": release_distributions(final),
    }
    if difficulty:
        check_sampled_with(loaded["sample"], difficulty["keep_rates"])
        funnel["difficulty"] = difficulty_summary(keep_rates_path=difficulty["keep_rates"],
                                                  sample_paths=difficulty["sampled"], scorer_dir=difficulty["scorer"],
                                                  released=pc.drop_null(final.column("difficulty")).to_numpy())
    write_json_atomic(funnel_path, funnel)
    write_contamination(contamination_out, merged, reasons, contamination)
    write_text_atomic(card_path, render_card(name=name, funnel=funnel, settings=settings,
                                             sample=final.slice(0, 3).to_pylist()))
    return funnel


def _read_matches(paths: Sequence[str | Path]) -> pa.Table:
    tables = [read_shard(path, MATCHES) for path in paths]
    return pa.concat_tables(tables) if tables else MATCHES.schema.empty_table()


def _release_funnel(reasons: Sequence[str | None], benchmarks: Sequence[str]) -> Funnel:
    """In, kept and dropped by reason; every reason is listed, with 0 where nothing was dropped."""
    funnel = Funnel(total=len(reasons), kept=sum(reason is None for reason in reasons))
    funnel.dropped.update({reason: 0 for reason in ["duplicate", "near_duplicate"]
                           + [contamination_reason(benchmark) for benchmark in benchmarks]})
    funnel.dropped.update(reason for reason in reasons if reason)
    funnel.check("release")
    return funnel


def _contamination_counts(summary: Mapping[str, Any], contamination: Mapping[str, list[dict[str, Any]]],
                          dropped: Counter) -> dict[str, Any]:
    """Per benchmark: its source and size, the release's questions that match it (a question may
    match several) and those dropped for it (each dropped question counts once)."""
    matched = Counter(match["benchmark"] for found in contamination.values() for match in found)
    return {"ngram": summary.get("ngram"), "benchmarks": {
        about["name"]: {"source": about["source"], "items": about["items"], "matched": matched[about["name"]],
                        "dropped": dropped[contamination_reason(about["name"])]}
        for about in summary["benchmarks"]}}


def write_contamination(path: str | Path, merged: pa.Table, reasons: Sequence[str | None],
                        contamination: Mapping[str, list[dict[str, Any]]]) -> None:
    """One JSON line per question dropped as contaminated, by id: the question, the reason and every
    benchmark item it matches (the one it was dropped for first)."""
    rows = pa.array([row for row, reason in enumerate(reasons) if reason and reason.startswith("contaminated:")],
                    pa.int64())
    records = [{**picked, "reason": reasons[row], "matches": contamination[picked["id"]]}
               for row, picked in zip(rows.to_pylist(), merged.select(["id", "question"]).take(rows).to_pylist())]
    records.sort(key=lambda record: record["id"])
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
                                    for record in records))
