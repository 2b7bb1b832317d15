"""Release dedup in three steps that scale out: `minhash_shard` (one job per best shard),
`lsh_band` (one job per band: that band's bucket keys of every shard, nothing else), and
`find_duplicates` (one job: ids, scores and exact keys of every row, the candidate pairs, and the
shingle sets of the rows in candidate pairs only). No step holds the questions of more than one shard."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..atomic import atomic_path, write_json_atomic
from ..minhash import MinHasher, band_keys
from ..neardup import best_of_groups, bucket_pairs, connected_components, exact_keys, pair_jaccard, rank_rows
from ..ngrams import DocumentHashes, ngram_sets
from ..records import BEST, ShardFormatError, StageSchema, read_columns, read_shard, write_shard

_ROWS_KEY = b"scalequest.rows"


def band_column(band: int) -> str:
    return f"band_{band:02d}"


def minhash_layout(bands: int) -> StageSchema:
    """A minhash shard: each question's id, score, exact key, LSH band keys and shingle set."""
    return StageSchema("minhash", pa.schema(
        [pa.field("id", pa.string(), nullable=False), pa.field("score", pa.float64(), nullable=False),
         pa.field("exact_key", pa.uint64(), nullable=False)]
        + [pa.field(band_column(band), pa.uint64(), nullable=False) for band in range(bands)]
        + [pa.field("shingles", pa.list_(pa.uint64()), nullable=False)]))  # sorted, unique


def minhash_shard(*, best_path: str | Path, out: str | Path, ngram: int, num_perm: int, bands: int,
                  seed: int) -> int:
    """Write the minhash shard of one best shard; returns its rows. `seed` must be the same for
    every shard of a run: it picks the hash functions."""
    best = read_shard(best_path, BEST)
    questions = best.column("question").to_pylist()
    shingles = ngram_sets(questions, ngram)
    keys = band_keys(MinHasher(num_perm, seed).signatures(shingles), bands)
    columns = [best.column("id"), best.column("score"), pa.array(exact_keys(questions), pa.uint64())]
    columns += [pa.array(keys[:, band]) for band in range(bands)]
    columns.append(pa.ListArray.from_arrays(pa.array(shingles.offsets, pa.int32()), pa.array(shingles.hashes)))
    layout = minhash_layout(bands)
    write_shard(pa.Table.from_arrays(columns, schema=layout.schema), layout, out)
    return best.num_rows


def _write_table(table: pa.Table, path: str | Path, stage: str, rows: int) -> None:
    """An atomic Parquet file naming its stage and the number of release rows it refers to."""
    table = table.replace_schema_metadata({b"scalequest.stage": stage.encode(), _ROWS_KEY: str(rows).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _read_table(path: str | Path, stage: str, rows: int) -> pa.Table:
    table = read_columns(path, stage, None)
    found = int(table.schema.metadata.get(_ROWS_KEY, b"-1"))
    if found != rows:
        raise ShardFormatError(f"{path}: made for {found} rows, but the minhash shards hold {rows} (stale file?)")
    return table


def write_minhash_list(minhash_paths: Sequence[str | Path], out: str | Path) -> None:
    """The minhash shards in the order the bands number their rows, in one file: each band job then
    depends on it alone rather than on every shard (thousands fewer edges for Snakemake to plan)."""
    write_json_atomic(out, {"minhash": [str(path) for path in minhash_paths]})


def lsh_band_job(*, minhash_list: str | Path, band: int, out: str | Path) -> int:
    """Rule lsh_band's job: one band over the shards of the minhash list."""
    shards = json.loads(Path(minhash_list).read_text(encoding="utf-8"))["minhash"]
    return lsh_band(minhash_paths=shards, band=band, out=out)


def lsh_band(*, minhash_paths: Sequence[str | Path], band: int, out: str | Path) -> int:
    """Candidate pairs of one band: each row with the first row of its bucket, rows numbered across
    `minhash_paths` in order. Reads only that band's keys. Returns the number of pairs."""
    keys = _column([read_columns(path, "minhash", [band_column(band)]) for path in minhash_paths], band_column(band))
    pairs = bucket_pairs(keys)
    _write_table(pa.table({"first": pairs[:, 0], "candidate": pairs[:, 1]}), out, "lsh_band", len(keys))
    return len(pairs)


def _column(shards: Sequence[pa.Table], name: str) -> np.ndarray | pa.Array:
    """One column of all shards, in order: an Arrow array for strings, else a numpy array."""
    column = pa.chunked_array([shard.column(name) for shard in shards]).combine_chunks()
    return column if pa.types.is_string(column.type) else column.to_numpy()


DUPLICATES_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # duplicate | near_duplicate
    pa.field("kept_id", pa.string(), nullable=False),  # the row kept in its place
    pa.field("similarity", pa.float64(), nullable=False),  # Jaccard similarity of the shingle sets (1.0 for exact)
])


def find_duplicates(*, minhash_paths: Sequence[str | Path], band_paths: Sequence[str | Path], threshold: float,
                    out: str | Path) -> pa.Table:
    """Every dropped row with its reason and the row kept in its place (written to `out`, sorted by
    id). Exact copies first; then candidate pairs from `band_paths` whose shingle sets reach
    `threshold` link rows into groups. Without `band_paths` only the exact pass runs."""
    shards = [read_columns(path, "minhash", ["id", "score", "exact_key"]) for path in minhash_paths]
    offsets = np.cumsum([0] + [shard.num_rows for shard in shards])
    ids = _column(shards, "id")
    if pc.count_distinct(ids).as_py() != len(ids):  # one question in two shards: not a duplicate, an error
        raise DuplicateIdError(f"ids that appear in more than one minhash shard: {_repeated(ids)}")
    rank = rank_rows(ids, _column(shards, "score"))
    survivor = best_of_groups(_column(shards, "exact_key"), rank)
    exact = np.flatnonzero(survivor != np.arange(len(ids)))

    pairs = _candidate_pairs(band_paths, survivor)
    rows, local = np.unique(pairs, return_inverse=True)
    local = local.reshape(-1, 2)
    shingles = _shingle_sets(minhash_paths, offsets, rows)
    groups = connected_components(len(rows), local[pair_jaccard(shingles, local) >= threshold])
    best = best_of_groups(groups, rank[rows])
    near = np.flatnonzero(best != np.arange(len(rows)))
    similarity = pair_jaccard(shingles, np.stack((near, best[near]), axis=1))

    dropped = np.concatenate((exact, rows[near]))
    table = pa.table({
        "id": ids.take(pa.array(dropped, pa.int64())),
        "reason": pa.array(["duplicate"] * len(exact) + ["near_duplicate"] * len(near), pa.string()),
        "kept_id": ids.take(pa.array(np.concatenate((survivor[exact], rows[best[near]])), pa.int64())),
        "similarity": np.concatenate((np.ones(len(exact)), similarity)),
    }, schema=DUPLICATES_SCHEMA).sort_by("id")
    if pc.any(pc.equal(table.column("id"), table.column("kept_id"))).as_py():
        raise AssertionError("dedup would drop a row it keeps (id == kept_id)")
    _write_table(table, out, "dedup", len(ids))
    return table


class DuplicateIdError(ValueError):
    """One id in several rows: rows copied between shards, not duplicate questions."""


def _repeated(ids: pa.Array, shown: int = 5) -> str:
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values").to_pylist()
    return ", ".join(repeated[:shown]) + (f" and {len(repeated) - shown} more" if len(repeated) > shown else "")


def _candidate_pairs(band_paths: Sequence[str | Path], survivor: np.ndarray) -> np.ndarray:
    """The bands' pairs between exact survivors, each once, as (pairs, 2) global row numbers."""
    rows = len(survivor)
    ends = [survivor[_read_table(path, "lsh_band", rows).column(name).to_numpy()] for path in band_paths
            for name in ("first", "candidate")]
    # One int64 key per pair (rows < 2**31), so that np.unique sorts a flat array.
    keys = np.concatenate([first * rows + candidate for first, candidate in zip(ends[::2], ends[1::2])] or
                          [np.zeros(0, np.int64)])
    first, candidate = np.divmod(np.unique(keys), rows)
    return np.stack((first, candidate), axis=1)[first != candidate]


def read_duplicates(path: str | Path, rows: int) -> pa.Table:
    """The dedup result for a release of `rows` rows (an error if it was made for another)."""
    return _read_table(path, "dedup", rows)


def _shingle_sets(minhash_paths: Sequence[str | Path], offsets: np.ndarray, rows: np.ndarray
                  ) -> DocumentHashes:
    """The shingle sets of the given global rows (sorted), reading one shard at a time."""
    shard_of_row = np.searchsorted(offsets, rows, side="right") - 1
    pieces = []
    for shard in np.unique(shard_of_row):
        local = rows[shard_of_row == shard] - offsets[shard]
        pieces.append(read_columns(minhash_paths[shard], "minhash", ["shingles"]).column(0).take(pa.array(local)))
    sets = pa.chunked_array(pieces, pa.list_(pa.uint64())).combine_chunks()
    bounds = sets.offsets.to_numpy().astype(np.int64)
    return DocumentHashes(sets.flatten().to_numpy(), bounds - bounds[0] if len(bounds) else np.zeros(1, np.int64))
