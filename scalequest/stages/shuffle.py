"""A deterministic shuffle of more rows than fit in memory, for the release.

Each row's place is a seeded 64-bit hash of its id (ties, all but impossible, by id): sorting by it
is a shuffle that depends only on the ids and the seed, never on the order the rows came in. The
hash range is cut into equal buckets; shards are read one at a time and their rows written to the
buckets on disk (one Arrow IPC file per shard, one record batch per bucket); then each bucket is
read back on its own and sorted. Buckets are contiguous hash ranges, so the buckets in order are
the whole sort, and no more than one bucket's rows are in memory at once.

Arrow IPC (pyarrow, already a dependency) rather than Parquet for the spill: it is written and read
back within the job, so its random access to one batch and cheap LZ4 matter more than size (the
spill takes about 1.6x the input shards' zstd Parquet on disk, beside the release, until it ends).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

ORDER_KEY = "_order_key"  # the spilled rows' extra column: their place in the shuffle
_SPILL_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


def order_keys(ids: Iterable[str], seed: int) -> np.ndarray:
    """The rows' places in the shuffle (uint64), from their ids. blake2b rather than Python's hash():
    the same on every machine, Python version and run."""
    key = str(seed).encode()
    digests = b"".join(hashlib.blake2b(row_id.encode(), digest_size=8, key=key).digest() for row_id in ids)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def bucket_of(keys: np.ndarray, buckets: int) -> np.ndarray:
    """Each key's bucket: `buckets` equal ranges of the 64-bit hash, in order (so bucket b's keys are
    all below bucket b+1's)."""
    if not 0 < buckets < 2**32:
        raise ValueError(f"buckets must be in 1..2**32-1, not {buckets}")
    return ((keys >> np.uint64(32)) * np.uint64(buckets) >> np.uint64(32)).astype(np.int64)


def in_order(table: pa.Table) -> pa.Table:
    """Rows carrying ORDER_KEY sorted into their shuffled order, without that column, as one chunk
    per column (so the bytes written from it never depend on how the rows were gathered)."""
    ordered = table.sort_by([(ORDER_KEY, "ascending"), ("id", "ascending")])
    return ordered.drop_columns([ORDER_KEY]).combine_chunks()


def shuffle_table(table: pa.Table, seed: int) -> pa.Table:
    """The same order as a BucketShuffle of the rows, for a table held in memory."""
    keys = order_keys(table.column("id").to_pylist(), seed)
    return in_order(table.append_column(ORDER_KEY, pa.array(keys, pa.uint64())))


class BucketShuffle:
    """Spill rows shard by shard into `buckets` hash-range buckets in a temporary folder beside
    `beside`, then read them back bucket by bucket in shuffled order. The folder is named like
    atomic_dir's temporaries (`.<name>.*.tmp`), so a killed job's leftovers are cleared by
    remove_stale_temporaries, and it is removed when the `with` block ends, whatever happens."""

    def __init__(self, beside: str | Path, buckets: int) -> None:
        beside = Path(beside)
        beside.parent.mkdir(parents=True, exist_ok=True)
        bucket_of(np.zeros(0, np.uint64), buckets)  # checks the count
        self.buckets = buckets
        self.directory = Path(tempfile.mkdtemp(prefix=f".{beside.name}.", suffix=".buckets.tmp", dir=beside.parent))
        self._spills: list[Path] = []

    def __enter__(self) -> BucketShuffle:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def add(self, table: pa.Table, keys: np.ndarray) -> None:
        """Spill one shard's rows (`keys`: their order_keys) as one file of one batch per bucket."""
        if len(keys) != table.num_rows:
            raise ValueError(f"{len(keys)} order keys for {table.num_rows} rows")
        buckets = bucket_of(keys, self.buckets)
        by_bucket = np.argsort(buckets, kind="stable")
        table = table.append_column(ORDER_KEY, pa.array(keys, pa.uint64())).take(pa.array(by_bucket, pa.int64()))
        batch = table.combine_chunks().to_batches()
        batch = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=table.schema)
        bounds = np.searchsorted(buckets[by_bucket], np.arange(self.buckets + 1))
        path = self.directory / f"{len(self._spills):06d}.arrow"
        with ipc.new_file(str(path), batch.schema, options=_SPILL_OPTIONS) as writer:
            for start, end in zip(bounds[:-1], bounds[1:]):
                writer.write_batch(batch.slice(int(start), int(end - start)))
        self._spills.append(path)

    def bucket(self, index: int) -> pa.Table:
        """One bucket's rows from every spilled shard, in shuffled order (without ORDER_KEY)."""
        batches = []
        for path in self._spills:
            # OSFile, not a memory map: the batches are read into memory, so closing the file is safe.
            with pa.OSFile(str(path)) as source:
                batches.append(ipc.open_file(source).get_batch(index))
        if not batches:
            raise ValueError("no rows were spilled")
        return in_order(pa.Table.from_batches(batches))

    def __iter__(self) -> Iterator[pa.Table]:
        """The buckets in order: together, every spilled row in shuffled order."""
        return (self.bucket(index) for index in range(self.buckets if self._spills else 0))


def bucket_count(rows: int, rows_per_bucket: int) -> int:
    """Enough buckets that one holds about `rows_per_bucket` rows (at least one bucket)."""
    return max(1, -(-rows // max(1, rows_per_bucket)))

