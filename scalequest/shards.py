"""Shard layout and seeds: everything is computed from the config, never from data files,
so planning a 2M-question run stays cheap."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

SHARD_DIGITS = 5
SHARD_PATTERN = r"\d{%d}" % SHARD_DIGITS


@dataclass(frozen=True)
class ShardSlice:
    """The prompts a generation shard owns: indices [start, stop) of its generator."""

    shard: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def shard_count(questions: int, shard_size: int) -> int:
    """Number of shards needed for `questions` at `shard_size` per shard."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    return -(-questions // shard_size)


def shard_ids(questions: int, shard_size: int) -> list[str]:
    """Zero-padded shard ids ('00000', '00001', ...) for a generator."""
    return [format_shard(i) for i in range(shard_count(questions, shard_size))]


def format_shard(index: int) -> str:
    return f"{index:0{SHARD_DIGITS}d}"


def shard_slice(shard: str | int, questions: int, shard_size: int) -> ShardSlice:
    """The prompt indices a shard owns; the last shard may be short."""
    index = int(shard)
    count = shard_count(questions, shard_size)
    if not 0 <= index < count:
        raise ValueError(f"shard {shard} out of range: the generator has {count} shards")
    start = index * shard_size
    return ShardSlice(index, start, min(start + shard_size, questions))


def derive_seed(global_seed: int, stage: str, generator: str, shard: str | int) -> int:
    """A 31-bit seed from (global seed, stage, generator, shard): stable across runs and
    machines, different for every shard, so re-running one shard reproduces it."""
    key = f"{global_seed}|{stage}|{generator}|{int(shard)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def question_id(generator: str, shard: str | int, index: int) -> str:
    """Stable question id `{generator}-{shard}-{index}`; index counts within the generator."""
    return f"{generator}-{format_shard(int(shard))}-{index}"
