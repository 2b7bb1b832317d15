"""Release, per best shard: the screens with models (embedding, judge: model_screens.py) for the
questions the model-free screen job (stages/screen.py) did not match, in one GPU job."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from ..chunks import LazyEngine, ShardChunks
from ..contamination import METHODS
from ..digests import file_digest
from ..engines import Sampling, open_chat, open_embedder
from ..model_screens import ModelScreenSettings, model_matches
from ..models import ModelSpec
from ..records import BEST, read_shard, to_table, write_shard
from ..stats import ShardStats, stats_path, write_stats
from .decontaminate import MATCHES, MODEL_MATCHES, load_benchmark_items


def model_screen_shard(*, generator: str, shard: str, best_path: str | Path, matches_path: str | Path,
                       benchmark_files: Mapping[str, str | Path], decontamination: Mapping[str, Any],
                       embedder: ModelSpec | None, judge: ModelSpec | None, seed: int, chunk_size: int,
                       out: str | Path) -> ShardStats:
    """The shard's matches by embedding and by the judge, for the (question, benchmark) pairs its
    screen job's matches leave open; written to `out` with a sidecar of the judge's counts."""
    best = read_shard(best_path, BEST)
    ids, questions = best.column("id").to_pylist(), best.column("question").to_pylist()
    position = {row_id: number for number, row_id in enumerate(ids)}
    caught = {(position[row["id"]], row["benchmark"]) for row in read_shard(matches_path, MATCHES).to_pylist()
              if row["method"] in METHODS}
    settings = ModelScreenSettings.from_config(decontamination)
    benchmarks = load_benchmark_items(items_path=benchmark_files["benchmark_items"],
                                      index_path=benchmark_files["index"], lexical_path=benchmark_files["lexical"],
                                      ngram=decontamination["ngram"])
    models = {role: spec.describe() for role, spec in (("embedding", embedder), ("judge", judge)) if spec}
    stats = ShardStats("model_matches", generator, shard, seed, models)
    stats.questions.keep(len(questions))  # nothing is dropped here: the release drops what the matches name
    sampling = Sampling.from_config(decontamination["judge"]["sampling"], seed=seed)
    with ShardChunks(out, stage="model_matches", generator=generator, shard=shard, chunk_size=chunk_size,
                     settings={"seed": seed, "input": file_digest(best_path), "caught": sorted(caught),
                               "benchmarks": file_digest(benchmark_files["benchmark_items"])}) as chunks, \
            LazyEngine(open_embedder, embedder, seed) as embedding, LazyEngine(open_chat, judge, seed) as chat:

        def embed(texts, call):
            vectors, truncated = chunks.embed(embedding, texts, call=call)
            stats.counters["truncated_inputs"] += truncated
            return np.asarray(vectors)

        def ask(conversations, call):
            embedding.close()  # one model at a time on the job's GPUs
            return chunks.chat(chat, conversations, sampling, call=call)

        found = model_matches(questions, benchmarks, settings, caught, embed if embedder else None,
                              ask if judge else None, stats.counters)
        rows = [{"id": ids[match["question"]], **{name: match.get(name) for name in MODEL_MATCHES.columns[1:]}}
                for match in sorted(found, key=lambda match: (match["question"], match["benchmark"]))]
        write_model_matches(to_table(rows, MODEL_MATCHES), out, chunks.finish(stats))
    return stats


def write_model_matches(table: pa.Table, out: str | Path, stats: ShardStats) -> None:
    """The matches, then the sidecar (a missing sidecar means the shard is not done)."""
    stats.finish()
    write_shard(table, MODEL_MATCHES, out)
    write_stats(stats_path(out), stats)
