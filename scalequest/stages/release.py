"""Stage 6: merge every generator's pairs, drop duplicates, near-duplicates and benchmark
questions (as decided by the dedup and screen rules), deterministic shuffle, Parquet files, the
dataset card, funnel.json, contamination.jsonl and number_variants.jsonl; streamed, shard by shard
and bucket by bucket."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..atomic import atomic_dir, write_json_atomic, write_text_atomic
from ..card import render_card
from ..contamination import METHODS, NUMBER_VARIANT, drops
from ..distributions import describe_measures, release_measures
from ..funnel import SHARD_STAGES, check_chain, load_stage_stats, models_used, summarize
from ..records import BEST, RELEASE, ShardFormatError, check_shard_layout, read_columns, read_shard
from ..stats import Funnel, StatsError
from .decontaminate import MATCHES, MODEL_MATCHES
from .dedup import read_duplicates
from .sample import check_sampled_with, difficulty_summary
from .shuffle import BucketShuffle, bucket_count, order_keys


def contamination_reason(benchmark: str) -> str:
    return f"contaminated:{benchmark}"


def attribute_contamination(matches: pa.Table, benchmarks: Sequence[str],
                            drop_variants: bool) -> dict[str, list[dict[str, Any]]]:
    """{question id: its matches, the one it is dropped for first}: matches that drop before those
    that do not (number variants, unless `drop_variants`), then by screen (contamination.METHODS),
    then the highest score (n-gram overlap, lexical joint cosine), then the benchmark first in
    `benchmarks` (the config's, by name)."""
    order = {name: position for position, name in enumerate(benchmarks)}
    methods = {method: position for position, method in enumerate(METHODS + (NUMBER_VARIANT,))}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for match in matches.to_pylist():
        match = {name: value for name, value in match.items() if value is not None}
        by_id.setdefault(match.pop("id"), []).append(match)
    for found in by_id.values():
        found.sort(key=lambda match: (not drops(match, drop_variants), methods[match["method"]],
                                      -_score(match), order[match["benchmark"]]))
    return by_id


def _score(match: Mapping[str, Any]) -> float:
    """A match's main score: the n-gram overlap, else the lexical joint cosine, else the embedding cosine."""
    return next((match[name] for name in ("overlap", "joint", "cosine") if match.get(name) is not None), 0.0)


class DropRule:
    """Each row's drop reason from its id, None for kept rows. Exact duplicates first, then
    near-duplicates (both from the dedup rule), then contamination of the rows still kept. Built
    once per release, then asked shard by shard. `variants`: the ids whose only matches are number
    variants that the release keeps."""

    def __init__(self, duplicates: pa.Table, contamination: Mapping[str, list[dict[str, Any]]],
                 drop_variants: bool) -> None:
        self._duplicate = dict(zip(duplicates.column("id").to_pylist(), duplicates.column("reason").to_pylist()))
        self._contaminated = {row_id: contamination_reason(found[0]["benchmark"])
                              for row_id, found in contamination.items() if drops(found[0], drop_variants)}
        self.variants = {row_id for row_id in contamination if row_id not in self._contaminated}

    def __call__(self, ids: Sequence[str]) -> list[str | None]:
        return [self._duplicate.get(row_id) or self._contaminated.get(row_id) for row_id in ids]


@dataclass
class ShardPlan:
    """What the first pass decided about one best shard, from its ids alone."""

    path: Path
    rows: int
    kept: np.ndarray  # bool per row
    keys: np.ndarray  # order_keys of the kept rows
    contaminated: dict[int, str]  # row → reason, for contamination.jsonl
    variants: list[int]  # released rows whose benchmark matches are number variants, for number_variants.jsonl
    data_bytes: int  # its rows' size before compression (Parquet's footer): about their size in memory


def plan_shard(path: str | Path, rule: DropRule, seed: int, reasons: Counter) -> ShardPlan:
    """Read one best shard's ids (read_columns checks that its rows are its own), decide its drops
    and count them in `reasons`."""
    ids = read_columns(path, BEST.stage, ["id"]).column("id").to_pylist()
    decided = rule(ids)
    reasons.update(decided)
    kept = np.array([reason is None for reason in decided], dtype=bool)
    footer = pq.read_metadata(path)
    return ShardPlan(path=Path(path), rows=len(ids), kept=kept,
                     keys=order_keys([row_id for row_id, keep in zip(ids, kept) if keep], seed),
                     contaminated={row: reason for row, reason in enumerate(decided)
                                   if reason and reason.startswith("contaminated:")},
                     variants=[row for row, (row_id, reason) in enumerate(zip(ids, decided))
                               if reason is None and row_id in rule.variants],
                     data_bytes=sum(footer.row_group(group).total_byte_size for group in range(footer.num_row_groups)))


class ReleaseFiles:
    """train-XXXXX-of-YYYYY.parquet files of `rows_per_file` rows (the last one fewer) in a directory
    that appears atomically, written from pieces in order: one open file at a time, so no more than
    one piece is in memory. Each piece becomes its own row groups."""

    def __init__(self, directory: Path, rows: int, rows_per_file: int) -> None:
        self.directory, self.rows_per_file = directory, rows_per_file
        self.count = max(1, -(-rows // rows_per_file))
        self.names: list[str] = []
        self._schema = BEST.schema.with_metadata(RELEASE.metadata())
        self._writer: pq.ParquetWriter | None = None
        self._room = 0

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._writer is None:
                self._open()
            piece = table.slice(0, self._room)
            self._writer.write_table(piece)
            self._room -= piece.num_rows
            table = table.slice(piece.num_rows)
            if not self._room:
                self._writer.close()
                self._writer = None

    def close(self) -> list[str]:
        """Finish the last file (an empty one if nothing was released); the files' names."""
        if not self.names:
            self._open()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if len(self.names) != self.count:
            raise AssertionError(f"wrote {len(self.names)} release files, expected {self.count}")
        return self.names

    def _open(self) -> None:
        name = f"train-{len(self.names):05d}-of-{self.count:05d}.parquet"
        self._writer = pq.ParquetWriter(self.directory / name, self._schema, compression="zstd")
        self.names.append(name)
        self._room = self.rows_per_file


CARD_SAMPLE = 3  # the card's example pairs: the release's first rows


@dataclass
class Released:
    """What the release files hold, in small: for the funnel, the card and contamination.jsonl."""

    files: list[str] = field(default_factory=list)
    measures: pa.Table | None = None  # release_measures of every released row
    sample: list[dict[str, Any]] = field(default_factory=list)
    contaminated: list[dict[str, Any]] = field(default_factory=list)  # id, question and drop reason
    variants: list[dict[str, Any]] = field(default_factory=list)  # id and question of released number variants


# A bucket's rows, about: 128 MiB in memory (sorting one takes 2-3 times that), and never fewer rows
# than the largest shard's. Not a shard's worth only: with M shards and B buckets the spill holds M x B
# batches, and below ~100 KB a batch (file opens, footers, LZ4 frames) costs more than its rows:
# at 2M pairs of ~320 characters, 200 buckets of one shard's rows made the merge 2.5x slower than in memory.
BUCKET_BYTES = 128 * 2**20


def rows_per_bucket(plans: Sequence[ShardPlan]) -> int:
    """Rows per bucket: about BUCKET_BYTES of them, at least the largest shard's. From the shards'
    footers, so the same inputs give the same buckets (and bytes), in any order."""
    rows, data_bytes = sum(plan.rows for plan in plans), sum(plan.data_bytes for plan in plans)
    by_size = BUCKET_BYTES * rows // data_bytes if data_bytes else 0
    return max(by_size, max((plan.rows for plan in plans), default=1), 1)


def write_release(plans: Sequence[ShardPlan], data_dir: str | Path, rows_per_file: int) -> Released:
    """The second pass: each shard's kept rows into hash buckets on disk (and its contaminated rows'
    questions aside), then bucket by bucket in shuffled order into the release files, keeping only
    the rows' measures and the card's sample. Memory: one shard or one bucket (rows_per_bucket) at a
    time, whatever the release's size."""
    kept = sum(int(plan.kept.sum()) for plan in plans)
    buckets = bucket_count(kept, rows_per_bucket(plans))
    released = Released()
    with atomic_dir(data_dir) as tmp, BucketShuffle(data_dir, buckets) as spill:
        for plan in plans:
            table = read_shard(plan.path, BEST)
            if table.num_rows != plan.rows:
                raise ShardFormatError(f"{plan.path}: changed while the release was read ({plan.rows} rows, "
                                       f"now {table.num_rows})")
            rows = sorted(plan.contaminated)
            picked = table.select(["id", "question"]).take(pa.array(rows, pa.int64())).to_pylist()
            released.contaminated.extend({**row, "reason": plan.contaminated[number]}
                                         for number, row in zip(rows, picked))
            released.variants.extend(table.select(["id", "question"]).take(pa.array(plan.variants, pa.int64()))
                                     .to_pylist())
            spill.add(table.filter(pa.array(plan.kept)), plan.keys)
            del table
        files = ReleaseFiles(tmp, kept, rows_per_file)
        measures = []
        for bucket in spill:
            files.write(bucket)
            measures.append(release_measures(bucket))
            if len(released.sample) < CARD_SAMPLE:
                released.sample.extend(bucket.slice(0, CARD_SAMPLE - len(released.sample)).to_pylist())
        released.files = files.close()
    released.measures = pa.concat_tables(measures) if measures else release_measures(BEST.schema.empty_table())
    return released


def release(*, best_paths: Sequence[str | Path], stats_paths: Mapping[str, Sequence[str | Path]],
            duplicates_path: str | Path, contamination_paths: Sequence[str | Path],
            model_matches_paths: Sequence[str | Path],
            benchmarks_path: str | Path | None, absent_benchmarks: Mapping[str, str], screens: Sequence[str],
            drop_variants: bool, seed: int,
            rows_per_file: int, name: str, settings: Mapping[str, Any], data_dir: str | Path, card_path: str | Path,
            funnel_path: str | Path, contamination_out: str | Path, variants_out: str | Path,
            difficulty: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the release; returns the funnel written to `funnel_path`. The benchmark matches are the
    screen jobs' (`contamination_paths`) and the model_screen jobs' (`model_matches_paths`). Without
    `benchmarks_path` (decontamination off) nothing is dropped as contaminated; `absent_benchmarks` ({name: path}) are
    the optional benchmarks left out because their file was not there; `screens`: those that ran
    (contamination.METHODS), counted apart; `drop_variants`: number variants are dropped too (else
    listed in `variants_out`). `difficulty` (when scoring is on)
    names the gathered keep rates, the sample shards and the scorer's folder, for the
    difficulty histograms before and after sampling.

    Streams (memory about one shard's, plus ~60 bytes per pair for ids, order keys and measures):
    a first pass decides the drops from the shards' ids alone; a second spills the kept rows into
    hash buckets on disk and writes the release from them bucket by bucket (stages/shuffle.py)."""
    loaded = load_stage_stats(stats_paths)
    stages = [stage for stage in SHARD_STAGES if stage in loaded]
    check_chain(loaded, stages)
    summary = json.loads(Path(benchmarks_path).read_text(encoding="utf-8")) if benchmarks_path else {"benchmarks": []}
    benchmarks = [benchmark["name"] for benchmark in summary["benchmarks"]]
    matches = pa.concat_tables([read_shard(path, MATCHES) for path in contamination_paths]
                               + [read_shard(path, MODEL_MATCHES) for path in model_matches_paths]
                               + [MATCHES.schema.empty_table()])
    contamination = attribute_contamination(matches, benchmarks, drop_variants)
    for path in best_paths:
        check_shard_layout(path, BEST)
    total = sum(pq.read_metadata(path).num_rows for path in best_paths)
    last_kept = sum(payload["questions"].kept for payload in loaded[stages[-1]].values())
    if total != last_kept:
        raise StatsError(f"the {stages[-1]} shards hold {total} pairs but their sidecars say {last_kept}")
    rule = DropRule(read_duplicates(duplicates_path, total), contamination, drop_variants)
    reasons: Counter = Counter()
    plans = [plan_shard(path, rule, seed, reasons) for path in best_paths]
    release_funnel = _release_funnel(total, reasons, benchmarks)
    released = write_release(plans, data_dir, rows_per_file)
    funnel = {
        "stages": summarize(loaded, stages) + [{"stage": "release", "questions": release_funnel.to_json()}],
        "released_pairs": release_funnel.kept,
        "files": [f"data/{file}" for file in released.files],
        "models": models_used(loaded),
        "decontamination": {**_contamination_counts(summary, contamination, released, screens, drop_variants),
                            "absent": dict(absent_benchmarks)},
        "distributions": describe_measures(released.measures),
    }
    if difficulty:
        check_sampled_with(loaded["sample"], difficulty["keep_rates"])
        funnel["difficulty"] = difficulty_summary(
            keep_rates_path=difficulty["keep_rates"], sample_paths=difficulty["sampled"],
            scorer_dir=difficulty["scorer"], released=pc.drop_null(released.measures.column("difficulty")).to_numpy())
    write_json_atomic(funnel_path, funnel)
    write_matches(contamination_out, released.contaminated, contamination)
    write_matches(variants_out, [{**row, "reason": None} for row in released.variants], contamination)
    write_text_atomic(card_path, render_card(name=name, funnel=funnel, settings=settings, sample=released.sample))
    return funnel


def release_mismatch(release_dir: str | Path) -> str | None:
    """How the release's data files disagree with its funnel.json (a file deleted, added, cut short or
    replaced since the release wrote them: their names and row count), or None where they agree or
    there is no funnel yet. Reads only the Parquet footers."""
    release_dir = Path(release_dir)
    try:
        funnel = json.loads((release_dir / "funnel.json").read_text())
        listed, pairs = set(funnel["files"]), int(funnel["released_pairs"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"funnel.json cannot be read ({type(error).__name__}: {error})"
    present = {f"data/{path.name}" for path in (release_dir / "data").glob("*.parquet")}
    if present != listed:
        missing, extra = sorted(listed - present), sorted(present - listed)
        return "; ".join([*([f"missing: {', '.join(missing)}"] if missing else []),
                          *([f"not written by the release: {', '.join(extra)}"] if extra else [])])
    try:
        rows = sum(pq.read_metadata(release_dir / name).num_rows for name in sorted(listed))
    except (OSError, pa.ArrowException) as error:
        return f"a data file cannot be read ({error})"
    return None if rows == pairs else f"the data files hold {rows} pairs, funnel.json says {pairs}"


def forget_disagreeing_release(release_dir: str | Path) -> str | None:
    """Remove the funnel.json of a release whose data files disagree with it (release_mismatch), so that
    Snakemake sees an output of the release missing and makes it again; returns the line that says so."""
    mismatch = release_mismatch(release_dir)
    if mismatch is None:
        return None
    (Path(release_dir) / "funnel.json").unlink(missing_ok=True)
    return f"The release in {release_dir} differs from its funnel.json ({mismatch}): it will be made again"


def _release_funnel(total: int, reasons: Counter, benchmarks: Sequence[str]) -> Funnel:
    """In, kept and dropped by reason (`reasons`: each row's, None for kept); every reason is listed,
    with 0 where nothing was dropped."""
    funnel = Funnel(total=total, kept=reasons[None])
    funnel.dropped.update({reason: 0 for reason in ["duplicate", "near_duplicate"]
                           + [contamination_reason(benchmark) for benchmark in benchmarks]})
    funnel.dropped.update({reason: count for reason, count in reasons.items() if reason})
    funnel.check("release")
    return funnel


def _contamination_counts(summary: Mapping[str, Any], contamination: Mapping[str, list[dict[str, Any]]],
                          released: Released, screens: Sequence[str], drop_variants: bool) -> dict[str, Any]:
    """Per benchmark: its source and size; the questions before deduplication that match it (a
    question may match several); those dropped for it, in all and by the screen that caught them
    (each dropped question counts once); and the released questions whose match to it is a number
    variant."""
    matched = Counter(match["benchmark"] for found in contamination.values() for match in found
                      if drops(match, drop_variants))
    dropped = Counter((contamination[row["id"]][0]["benchmark"], contamination[row["id"]][0]["method"])
                      for row in released.contaminated)
    variants = Counter(match["benchmark"] for row in released.variants for match in contamination[row["id"]])
    methods = tuple(screens) + ((NUMBER_VARIANT,) if drop_variants else ())
    return {"ngram": summary.get("ngram"), "screens": list(screens), "number_variants_dropped": drop_variants,
            "benchmarks": {
        about["name"]: {"source": about["source"], "items": about["items"], "matched": matched[about["name"]],
                        "dropped": sum(dropped[about["name"], method] for method in methods),
                        "dropped_by": {method: dropped[about["name"], method] for method in methods},
                        "number_variants": variants[about["name"]]}
        for about in summary["benchmarks"]}}


def write_matches(path: str | Path, picked: Sequence[Mapping[str, Any]],
                  contamination: Mapping[str, list[dict[str, Any]]]) -> None:
    """One JSON line per question, by id: the question, its drop reason (null for a released one) and
    every benchmark item it matches, with the screen and its scores (the one it was dropped for
    first). `picked`: those rows' ids, questions and reasons."""
    records = [{"id": row["id"], "question": row["question"], "reason": row["reason"],
                "matches": contamination[row["id"]]} for row in picked]
    records.sort(key=lambda record: record["id"])
    write_text_atomic(path, "".join(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
                                    for record in records))
