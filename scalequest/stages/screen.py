"""The release's per-shard screen: a best shard's MinHash keys and, when decontamination is on,
its benchmark matches, in one job."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .decontaminate import decontaminate_shard
from .dedup import minhash_shard


def screen_shard(*, best_path: str | Path, minhash_out: str | Path, ngram: int, num_perm: int, bands: int, seed: int,
                 decontamination: Mapping[str, Any] | None, items_path: str | Path | None,
                 index_path: str | Path | None, matches_out: str | Path | None) -> None:
    """Write the shard's MinHash keys; with `decontamination` (the config's section), also its
    matches against the benchmark index."""
    minhash_shard(best_path=best_path, out=minhash_out, ngram=ngram, num_perm=num_perm, bands=bands, seed=seed)
    if decontamination is not None:
        decontaminate_shard(best_path=best_path, items_path=items_path, index_path=index_path,
                            ngram=decontamination["ngram"], min_overlap=decontamination["min_overlap"], out=matches_out)
