"""Writing a stage's outputs: the shard, then its stats sidecar, each atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa

from ..records import StageSchema, to_table, write_shard
from ..stats import ShardStats, stats_path, write_stats


def write_stage_outputs(rows: Iterable[Mapping[str, Any]], layout: StageSchema, out: str | Path,
                        stats: ShardStats) -> ShardStats:
    """Write the rows as the shard and then its sidecar; a missing sidecar means the shard is not done."""
    return write_stage_table(to_table(rows, layout), layout, out, stats)


def write_stage_table(table: pa.Table, layout: StageSchema, out: str | Path, stats: ShardStats) -> ShardStats:
    """Write a table as the shard and then its sidecar, after checking it holds the kept count."""
    stats.finish()
    if table.num_rows != stats.questions.kept:
        raise AssertionError(f"{out}: {table.num_rows} rows but the stats say {stats.questions.kept} kept")
    write_shard(table, layout, out)
    write_stats(stats_path(out), stats)
    return stats
