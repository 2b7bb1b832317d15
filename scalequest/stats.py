"""Per-shard stats sidecars: what came in, what was kept, what was dropped and why.

`in = kept + sum(dropped)` holds by construction (every record goes through `keep` or `drop`)
and is checked again whenever a sidecar is read back.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .atomic import write_json_atomic

SIDECAR_SUFFIX = ".stats.json"


class StatsError(ValueError):
    """A stats sidecar is missing, malformed, or breaks conservation."""


@dataclass
class Funnel:
    """Counts for one unit (questions or responses) passing through a stage."""

    unit: str = "question"
    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def keep(self, count: int = 1) -> None:
        self.total += count
        self.kept += count

    def drop(self, reason: str, count: int = 1) -> None:
        self.total += count
        self.dropped[reason] += count

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "in": self.total, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}

    @classmethod
    def from_json(cls, payload: dict[str, Any], where: str) -> "Funnel":
        try:
            funnel = cls(payload["unit"], int(payload["in"]), int(payload["kept"]), Counter(payload["dropped"]))
        except (KeyError, TypeError, ValueError) as err:
            raise StatsError(f"{where}: malformed funnel {payload!r} ({err})") from err
        funnel.check(where)
        return funnel

    def check(self, where: str) -> None:
        if self.total != self.kept + sum(self.dropped.values()):
            raise StatsError(
                f"{where}: in ({self.total}) != kept ({self.kept}) + dropped ({sum(self.dropped.values())})"
            )

    def add(self, other: "Funnel") -> None:
        self.total += other.total
        self.kept += other.kept
        self.dropped.update(other.dropped)


@dataclass
class ShardStats:
    """Everything a stage records about one shard."""

    stage: str
    generator: str
    shard: str
    seed: int | None
    models: dict[str, str]
    questions: Funnel = field(default_factory=Funnel)
    responses: Funnel | None = None
    counters: Counter = field(default_factory=Counter)  # generated_tokens, truncated_inputs, ...
    inputs: dict[str, str] = field(default_factory=dict)  # digests of run-wide inputs the shard used
    seconds: float = 0.0  # the work the shard keeps: this attempt's, and the chunks it resumed
    earlier_seconds: float = 0.0  # of those, the resumed chunks' (written by earlier attempts)
    interruptions: dict[str, Any] | None = None  # a chunked job's attempts, resumed chunks and lost seconds
    _started: float = field(default_factory=time.perf_counter, repr=False)

    def finish(self) -> None:
        self.seconds = round(time.perf_counter() - self._started + self.earlier_seconds, 3)

    def to_json(self) -> dict[str, Any]:
        payload = {
            "stage": self.stage,
            "generator": self.generator,
            "shard": self.shard,
            "seed": self.seed,
            "models": self.models,
            "questions": self.questions.to_json(),
            "counters": dict(sorted(self.counters.items())),
            "seconds": self.seconds,
        }
        if self.responses is not None:
            payload["responses"] = self.responses.to_json()
        if self.interruptions is not None:
            payload["interruptions"] = self.interruptions
        if self.inputs:
            payload["inputs"] = dict(sorted(self.inputs.items()))
        return payload


def write_stats(path: str | Path, stats: ShardStats) -> None:
    stats.questions.check(str(path))
    if stats.responses is not None:
        stats.responses.check(str(path))
    write_json_atomic(path, stats.to_json())


def read_stats(path: str | Path) -> dict[str, Any]:
    """Read a sidecar; its funnels are returned as checked `Funnel` objects."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StatsError(f"{path}: unreadable stats sidecar ({err}). {remake_advice(path)}") from err
    for key in ("questions", "responses"):
        if key in payload:
            payload[key] = Funnel.from_json(payload[key], f"{path} [{key}]")
    if "questions" not in payload:
        raise StatsError(f"{path}: no 'questions' funnel")
    return payload


def summed_funnel(paths: Iterable[str | Path], unit: str = "questions") -> Funnel:
    """One funnel: the sum of the sidecars' `unit` funnels."""
    total = Funnel()
    for path in paths:
        total.add(read_stats(path)[unit])
    return total


def drop_summary(funnel: Funnel) -> str:
    """"reason: count, ..." for an error message ("none" when nothing was dropped)."""
    return ", ".join(f"{reason}: {count}" for reason, count in sorted(funnel.dropped.items())) or "none"


def stats_path(shard_path: str | Path) -> Path:
    """The sidecar beside a shard: `x.parquet` → `x.stats.json`."""
    shard_path = Path(shard_path)
    return shard_path.with_name(shard_path.name.removesuffix(".parquet") + SIDECAR_SUFFIX)


def remake_advice(path: str | Path) -> str:
    """What to do about a file the workflow wrote that cannot be used (a shard, a sidecar, a stage's
    table): delete it with its shard or sidecar. Snakemake makes a missing output again, whichever
    target needs it (rule all, the default, lists every shard and sidecar), then re-runs what read it."""
    path = Path(path)
    if path.name.endswith(SIDECAR_SUFFIX):
        pair, what = path.with_name(path.name.removesuffix(SIDECAR_SUFFIX) + ".parquet"), "shard"
    else:
        pair, what = stats_path(path), "sidecar"
    if not path.exists():
        todo, made = "Run again", "it"
    elif pair.exists():
        todo, made = f"Delete it and its {what} {pair}, and run again", "both"
    else:
        todo, made = "Delete it, and run again", "it"
    return (f"{todo}: the workflow makes {made} anew (Snakemake re-makes a missing output; rule all, the default "
            "target, lists every shard and sidecar), then re-runs the jobs that read it.")
