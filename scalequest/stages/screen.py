"""The release's per-shard screen: a best shard's MinHash keys and, when decontamination is on,
its benchmark matches, in one job."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..contamination import ScreenSettings
from .decontaminate import decontaminate_shard, load_benchmark_items
from .dedup import minhash_shard


def screen_shard(*, best_path: str | Path, minhash_out: str | Path, ngram: int, num_perm: int, bands: int, seed: int,
                 decontamination: Mapping[str, Any] | None, benchmark_files: Mapping[str, str | Path],
                 matches_out: str | Path | None) -> None:
    """Write the shard's MinHash keys; with `decontamination` (the config's section), also its
    matches against the benchmark indexes (`benchmark_files`: items, index and lexical paths)."""
    minhash_shard(best_path=best_path, out=minhash_out, ngram=ngram, num_perm=num_perm, bands=bands, seed=seed)
    if decontamination is not None:
        settings = ScreenSettings.from_config(decontamination)
        benchmarks = load_benchmark_items(items_path=benchmark_files["benchmark_items"],
                                          index_path=benchmark_files["index"],
                                          lexical_path=benchmark_files["lexical"], ngram=settings.ngram)
        decontaminate_shard(best_path=best_path, benchmarks=benchmarks, settings=settings, out=matches_out)
