"""Shard layout and seed derivation."""
import pytest

from scalequest.shards import derive_seed, question_id, shard_count, shard_ids, shard_slice


def test_shards_cover_all_questions_once():
    pieces = [shard_slice(s, 1003, 100) for s in shard_ids(1003, 100)]
    assert len(pieces) == 11 and pieces[-1].size == 3
    covered = [i for p in pieces for i in range(p.start, p.stop)]
    assert covered == list(range(1003))


def test_full_scale_shard_count():
    assert shard_count(1_000_000, 5000) == 200


def test_zero_shard_size_is_rejected():
    with pytest.raises(ValueError, match="shard_size must be at least 1"):
        shard_count(10, 0)


def test_out_of_range_shard_is_rejected():
    with pytest.raises(ValueError, match="out of range"):
        shard_slice("00005", 10, 5)


def test_seeds_are_stable_and_distinct():
    assert derive_seed(42, "generate", "qwen2-math", "00003") == derive_seed(42, "generate", "qwen2-math", 3)
    seeds = {derive_seed(42, stage, gen, shard) for stage in ("generate", "respond")
             for gen in ("a", "b") for shard in range(50)}
    assert len(seeds) == 200
    assert derive_seed(42, "generate", "a", 0) != derive_seed(43, "generate", "a", 0)
    assert 0 <= derive_seed(1, "x", "y", 0) < 2**31


def test_question_ids():
    assert question_id("qwen2-math", "00002", 10004) == "qwen2-math-00002-10004"
