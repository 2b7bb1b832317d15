"""How an embedding model pools its token states into one vector: as its sentence-transformers
configuration says (1_Pooling/config.json: CLS token, mean or last token), else the mean, so that
both engines give a model the same vectors."""
from __future__ import annotations

import json
from pathlib import Path

from ..models import is_local_model_path

CLS, MEAN, LAST = "cls", "mean", "last"
_MODES = {"pooling_mode_cls_token": CLS, "pooling_mode_mean_tokens": MEAN, "pooling_mode_lasttoken": LAST}


def pooling_mode(path: str) -> str:
    """The model's pooling: its sentence-transformers pooling config's mode, else mean."""
    config = Path(path) / "1_Pooling" / "config.json"
    if not is_local_model_path(path):  # a hub id: the prefetch put the model's files in the cache
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(path, "1_Pooling/config.json")
        config = Path(cached) if isinstance(cached, str) else config
    if not config.is_file():
        return MEAN
    settings = json.loads(config.read_text(encoding="utf-8"))
    return next((mode for key, mode in _MODES.items() if settings.get(key)), MEAN)
