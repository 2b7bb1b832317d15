"""Stage 6: merge every generator's pairs, exact dedup, deterministic shuffle, Parquet files,
the dataset card and funnel.json."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_dir, write_json_atomic, write_text_atomic
from ..funnel import SHARD_STAGES, check_chain, load_stage_stats, models_used, summarize
from ..records import BEST, RELEASE, read_shard
from ..stats import Funnel, StatsError
from ..card import render_card

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalize_question(text: str) -> str:
    """The exact-dedup key: NFKC, case-folded, whitespace collapsed, punctuation trimmed at the ends."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _EDGE_PUNCT.sub("", _SPACE.sub(" ", text).strip())


def dedup_exact(table: pa.Table) -> tuple[pa.Table, int]:
    """Keep one row per normalized question: the highest score, then the smallest id."""
    ids, scores = table.column("id").to_pylist(), table.column("score").to_pylist()
    keys = [normalize_question(q) for q in table.column("question").to_pylist()]
    order = sorted(range(len(ids)), key=lambda i: (keys[i], -scores[i], ids[i]))
    keep, seen = [], set()
    for index in order:
        if keys[index] not in seen:
            seen.add(keys[index])
            keep.append(index)
    keep.sort(key=lambda i: ids[i])
    return table.take(keep), len(ids) - len(keep)


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


def release(*, best_paths: Sequence[str | Path], stats_paths: Mapping[str, Sequence[str | Path]], seed: int,
            rows_per_file: int, name: str, settings: Mapping[str, Any], data_dir: str | Path,
            card_path: str | Path, funnel_path: str | Path) -> dict[str, Any]:
    """Build the release; returns the funnel written to `funnel_path`."""
    loaded = load_stage_stats(stats_paths)
    stages = [stage for stage in SHARD_STAGES if stage in loaded]
    check_chain(loaded, stages)
    tables = [read_shard(path, BEST) for path in best_paths]
    merged = pa.concat_tables(tables) if tables else BEST.schema.empty_table()
    last_kept = sum(payload["questions"].kept for payload in loaded[stages[-1]].values())
    if merged.num_rows != last_kept:
        raise StatsError(f"the {stages[-1]} shards hold {merged.num_rows} pairs but their sidecars say {last_kept}")
    unique, duplicates = dedup_exact(merged)
    release_funnel = Funnel(total=merged.num_rows, kept=unique.num_rows)
    release_funnel.dropped["duplicate"] = duplicates
    release_funnel.check("release")
    final = shuffle(unique, seed)
    files = write_parquet_files(final, data_dir, rows_per_file)
    funnel = {
        "stages": summarize(loaded, stages) + [{"stage": "release", "questions": release_funnel.to_json()}],
        "released_pairs": final.num_rows,
        "files": [f"data/{file}" for file in files],
        "models": models_used(loaded),
    }
    write_json_atomic(funnel_path, funnel)
    write_text_atomic(card_path, render_card(name=name, funnel=funnel, settings=settings, sample=final.slice(0, 3).to_pylist()))
    return funnel
