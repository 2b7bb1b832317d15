"""The streaming release: deterministic bytes whatever the shard order, nothing lost, rows per
file, the same order, distributions and samples as an in-memory release, no bucket files left."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO
from scalequest.config import load_config_files
from scalequest.distributions import release_distributions
from scalequest.records import BEST, write_shard
from scalequest.stages import release as release_module
from scalequest.stages.decontaminate import MATCHES
from scalequest.stages.dedup import DUPLICATES_SCHEMA, _write_table
from scalequest.stages.release import release
from scalequest.stages.shuffle import BucketShuffle, bucket_of, order_keys
from scalequest.stages.shuffle import shuffle_table as shuffle
from scalequest.stats import ShardStats, write_stats

SHARDS, ROWS, SEED, ROWS_PER_FILE = 4, 30, 7, 25
DUPLICATES = {"g-00000-3": "duplicate", "g-00001-4": "near_duplicate", "g-00003-29": "duplicate"}
CONTAMINATED = {"g-00002-5": "gsm8k", "g-00003-0": "math", "g-00001-4": "gsm8k"}  # g-00001-4: a duplicate first
NUMBER_VARIANTS = {"g-00001-7": "math"}  # released: number variants are only reported by default
SETTINGS = {"release": {"decontamination": load_config_files(REPO / "config.yaml")["release"]["decontamination"]}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """Four best shards of 30 pairs with sidecars, the dedup result, benchmark matches and their summary."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    best = []
    for shard in range(SHARDS):
        ids = [f"g-{shard:05d}-{row}" for row in range(ROWS)]
        table = pa.table({
            "id": ids, "generator": ["g"] * ROWS, "shard": [shard] * ROWS,
            "question": [f"Question {row_id}: what is {row} + {shard}?" for row, row_id in enumerate(ids)],
            "question_model": ["m"] * ROWS, "question_seed": [1] * ROWS,
            "difficulty": [None if row % 5 == 0 else float(rng.random()) for row in range(ROWS)],
            "response": ["step " * int(rng.integers(1, 40)) + row_id for row_id in ids],
            "score": rng.random(ROWS), "margin": [None if row % 3 else 0.1 for row in range(ROWS)],
            "candidates": [2] * ROWS, "response_model": ["m"] * ROWS, "reward_model": ["r"] * ROWS}, schema=BEST.schema)
        path = root / "best" / "g" / f"{shard:05d}.parquet"
        write_shard(table, BEST, path)
        stats = ShardStats("best", "g", f"{shard:05d}", SEED, {})
        stats.questions.keep(ROWS)
        write_stats(path.with_name(f"{shard:05d}.stats.json"), stats)
        best.append(path)
    duplicates = pa.table({"id": list(DUPLICATES), "reason": list(DUPLICATES.values()),
                           "kept_id": ["g-00000-0"] * len(DUPLICATES), "similarity": [1.0] * len(DUPLICATES)},
                          schema=DUPLICATES_SCHEMA).sort_by("id")
    _write_table(duplicates, root / "duplicates.parquet", "dedup", SHARDS * ROWS)
    matches = pa.Table.from_pylist(
        [{"id": row_id, "benchmark": benchmark, "item": 0, "benchmark_question": "q", "method": "ngram",
          "shared_ngrams": 5, "overlap": 0.9} for row_id, benchmark in CONTAMINATED.items()]
        + [{"id": row_id, "benchmark": benchmark, "item": 1, "benchmark_question": "q", "method": "number_variant",
            "signature": 0.2, "words": 0.95, "joint": 0.6} for row_id, benchmark in NUMBER_VARIANTS.items()],
        schema=MATCHES.schema)
    write_shard(matches, MATCHES, root / "matches.parquet")
    summary = {"ngram": 13, "benchmarks": [{"name": "gsm8k", "source": "x", "items": 3},
                                           {"name": "math", "source": "y", "items": 4}]}
    (root / "benchmarks.json").write_text(json.dumps(summary))
    return {"best": best, "stats": [path.with_name(path.name.replace(".parquet", ".stats.json")) for path in best],
            "duplicates": root / "duplicates.parquet", "matches": [root / "matches.parquet"],
            "benchmarks": root / "benchmarks.json"}


@pytest.fixture(autouse=True)
def small_buckets(monkeypatch):
    """Buckets of one shard's rows (30), as if the pairs were large: four buckets, not one."""
    monkeypatch.setattr(release_module, "BUCKET_BYTES", 1)


def run_release(inputs: dict, out: Path, best=None, rows_per_file: int = ROWS_PER_FILE) -> dict:
    return release(best_paths=inputs["best"] if best is None else best, stats_paths={"best": inputs["stats"]},
                   duplicates_path=inputs["duplicates"], contamination_paths=inputs["matches"], model_matches_paths=[],
                   benchmarks_path=inputs["benchmarks"], absent_benchmarks={}, screens=["ngram", "lexical"],
                   drop_variants=False, seed=SEED, rows_per_file=rows_per_file, name="test", settings=SETTINGS,
                   data_dir=out / "data",
                   card_path=out / "README.md", funnel_path=out / "funnel.json",
                   contamination_out=out / "contamination.jsonl", variants_out=out / "number_variants.jsonl")


def release_bytes(out: Path) -> dict[str, bytes]:
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


def every_row(inputs: dict) -> pa.Table:
    return pa.concat_tables([pq.read_table(path) for path in inputs["best"]])


def test_same_bytes_twice_and_in_any_shard_order(inputs, tmp_path):
    run_release(inputs, tmp_path / "a")
    run_release(inputs, tmp_path / "b")
    run_release(inputs, tmp_path / "c", best=list(reversed(inputs["best"])))
    first = release_bytes(tmp_path / "a")
    assert len([name for name in first if name.startswith("data/")]) == 5
    files = sorted((tmp_path / "a" / "data").glob("*.parquet"))
    assert sum(pq.read_metadata(path).num_row_groups for path in files) > len(files)  # pieces of several buckets
    assert first == release_bytes(tmp_path / "b") == release_bytes(tmp_path / "c")


def test_nothing_lost_and_rows_per_file(inputs, tmp_path):
    funnel = run_release(inputs, tmp_path)
    files = sorted((tmp_path / "data").glob("*.parquet"))
    assert [path.name for path in files] == [f"train-{i:05d}-of-00005.parquet" for i in range(5)]
    assert funnel["files"] == [f"data/{path.name}" for path in files]
    sizes = [pq.read_metadata(path).num_rows for path in files]
    assert sizes[:-1] == [ROWS_PER_FILE] * 4 and 0 < sizes[-1] <= ROWS_PER_FILE
    released = pa.concat_tables([pq.read_table(path) for path in files])
    assert released.schema.metadata[b"scalequest.stage"] == b"release"
    dropped = set(DUPLICATES) | set(CONTAMINATED)
    every = set(every_row(inputs).column("id").to_pylist())
    ids = released.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == funnel["released_pairs"] == SHARDS * ROWS - len(dropped)
    assert set(ids) == every - dropped
    stage = funnel["stages"][-1]["questions"]
    assert stage["in"] == SHARDS * ROWS and stage["kept"] + sum(stage["dropped"].values()) == stage["in"]
    assert stage["dropped"] == {"duplicate": 2, "near_duplicate": 1, "contaminated:gsm8k": 1, "contaminated:math": 1}
    contaminated = [json.loads(line) for line in (tmp_path / "contamination.jsonl").read_text().splitlines()]
    assert [(row["id"], row["reason"]) for row in contaminated] == [("g-00002-5", "contaminated:gsm8k"),
                                                                     ("g-00003-0", "contaminated:math")]
    assert contaminated[0]["question"].startswith("Question g-00002-5:")
    assert contaminated[0]["matches"] == [{"benchmark": "gsm8k", "item": 0, "benchmark_question": "q",
                                           "method": "ngram", "shared_ngrams": 5, "overlap": 0.9}]
    variants = [json.loads(line) for line in (tmp_path / "number_variants.jsonl").read_text().splitlines()]
    assert [(row["id"], row["reason"], row["matches"][0]["method"]) for row in variants] == [
        ("g-00001-7", None, "number_variant")]
    counts = funnel["decontamination"]["benchmarks"]
    assert counts["math"] == {"source": "y", "items": 4, "matched": 1, "dropped": 1,
                              "dropped_by": {"ngram": 1, "lexical": 0}, "number_variants": 1}
    assert counts["gsm8k"]["matched"] == 2 and counts["gsm8k"]["dropped"] == 1
    card = (tmp_path / "README.md").read_text()
    assert "number_variants.jsonl" in card and "numbers alone at least 0.8" in card
    assert "| math | y | 4 | 1 | 1 | 1 | 0 | 1 |" in card


def test_same_order_distributions_and_sample_as_in_memory(inputs, tmp_path):
    funnel = run_release(inputs, tmp_path)
    released = pq.read_table(tmp_path / "data")
    rows = every_row(inputs)
    kept = rows.filter(pa.array([row_id not in DUPLICATES and row_id not in CONTAMINATED
                                 for row_id in rows.column("id").to_pylist()]))
    in_memory = shuffle(kept, SEED)
    assert released.column("id").to_pylist() == in_memory.column("id").to_pylist()
    assert released.column("id").to_pylist() != sorted(released.column("id").to_pylist())
    assert funnel["distributions"] == release_distributions(in_memory)
    card = (tmp_path / "README.md").read_text()
    for row in in_memory.slice(0, 3).to_pylist():
        assert row["response"] in card


def test_no_bucket_files_remain_even_after_a_failure(inputs, tmp_path, monkeypatch):
    run_release(inputs, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md", "contamination.jsonl", "data",
                                                                "funnel.json", "number_variants.jsonl"]
    assert not list((tmp_path / "data").glob("*.arrow"))

    def fail(self, table):
        raise RuntimeError("disk full")

    monkeypatch.setattr(release_module.ReleaseFiles, "write", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        run_release(inputs, tmp_path / "failed")
    assert list((tmp_path / "failed").iterdir()) == []


def test_buckets_by_size(inputs, monkeypatch):
    plans = [release_module.ShardPlan(path=Path(f"{shard}.parquet"), rows=rows, kept=np.ones(rows, bool),
                                      keys=np.zeros(rows, np.uint64), contaminated={}, variants=[],
                                      data_bytes=rows * 1000)
             for shard, rows in enumerate([100, 300, 200])]
    monkeypatch.setattr(release_module, "BUCKET_BYTES", 450_000)
    assert release_module.rows_per_bucket(plans) == 450
    assert release_module.rows_per_bucket(plans[::-1]) == 450
    monkeypatch.setattr(release_module, "BUCKET_BYTES", 1000)
    assert release_module.rows_per_bucket(plans) == 300  # never fewer than the largest shard's


def test_bucket_count_does_not_change_the_order(inputs, tmp_path):
    rows = every_row(inputs)
    keys = order_keys(rows.column("id").to_pylist(), SEED)
    orders = []
    for buckets in (1, 3, 50):
        with BucketShuffle(tmp_path / "data", buckets) as spill:
            for start in range(0, rows.num_rows, ROWS):
                spill.add(rows.slice(start, ROWS), keys[start:start + ROWS])
            orders.append([row_id for bucket in spill for row_id in bucket.column("id").to_pylist()])
            assert len(list(spill.directory.iterdir())) == SHARDS
        assert not spill.directory.exists()
    assert orders[0] == orders[1] == orders[2] == shuffle(rows, SEED).column("id").to_pylist()


def test_buckets_are_ordered_ranges_of_the_hash():
    keys = np.sort(order_keys([f"id-{i}" for i in range(1000)], 3))
    buckets = bucket_of(keys, 7)
    assert (np.diff(buckets) >= 0).all() and set(buckets) == set(range(7))
    assert bucket_of(np.array([2**64 - 1], np.uint64), 7)[0] == 6
    assert not np.array_equal(order_keys(["a", "b"], 1), order_keys(["a", "b"], 2))


def test_an_empty_release_has_one_empty_file(tmp_path):
    empty = tmp_path / "best" / "g" / "00000.parquet"
    write_shard(BEST.schema.empty_table(), BEST, empty)
    stats = ShardStats("best", "g", "00000", SEED, {})
    write_stats(empty.with_name("00000.stats.json"), stats)
    _write_table(DUPLICATES_SCHEMA.empty_table(), tmp_path / "duplicates.parquet", "dedup", 0)
    funnel = release(best_paths=[empty], stats_paths={"best": [empty.with_name("00000.stats.json")]},
                     duplicates_path=tmp_path / "duplicates.parquet", contamination_paths=[], model_matches_paths=[],
                     benchmarks_path=None, absent_benchmarks={}, screens=[], drop_variants=False, seed=SEED,
                     rows_per_file=10, name="test", settings={}, data_dir=tmp_path / "out" / "data",
                     card_path=tmp_path / "out" / "README.md",
                     funnel_path=tmp_path / "out" / "funnel.json",
                     contamination_out=tmp_path / "out" / "contamination.jsonl",
                     variants_out=tmp_path / "out" / "number_variants.jsonl")
    assert funnel["released_pairs"] == 0 and funnel["files"] == ["data/train-00000-of-00001.parquet"]
    assert pq.read_table(tmp_path / "out" / "data").num_rows == 0
