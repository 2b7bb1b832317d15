"""Digests of what decides a result (settings, input files, models), recorded beside what a resumable job
saves (engine chunks, training checkpoints): a saved part is used again only where they all match."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .models import ModelSpec


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def file_digest(path: str | Path) -> str:
    """The hash of a file's bytes (an input shard)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:20]


def model_fingerprint(spec: ModelSpec) -> dict[str, Any]:
    """What decides a model's outputs: its settings, and for a local folder its files' names, sizes and
    modification times (a retrained model at the same path is another model; hashing 15 GB is too slow)."""
    settings = {name: value for name, value in asdict(spec).items() if name not in ("key", "label")}
    folder = Path(spec.path)
    if folder.is_dir():
        settings["files"] = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()
                                   if p.is_file())
    return settings
