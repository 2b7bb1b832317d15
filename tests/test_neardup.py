"""Exact and near-duplicate removal: tokens and n-grams, MinHash, the per-band LSH join and the
row kept of each group."""
import random
import shutil

import numpy as np
import pyarrow as pa
import pytest

from scalequest.minhash import MinHasher, lsh_rows
from scalequest.neardup import best_of_groups, bucket_pairs, connected_components, exact_keys, pair_jaccard, rank_rows
from scalequest.ngrams import ngram_hashes, ngram_sets, tokenize
from scalequest.records import BEST, to_table, write_shard
from scalequest.stages.dedup import DuplicateIdError, find_duplicates, lsh_band, minhash_shard
from scalequest.synthetic import planted_question_set

SETTINGS = {"ngram": 3, "num_perm": 120, "bands": 20, "threshold": 0.8}  # the config defaults


def write_best_shards(folder, questions, scores, shards):
    """`questions` split into `shards` best shards (ids g-{shard}-{index}); returns paths and ids."""
    paths, ids = [], []
    for shard, part in enumerate(np.array_split(np.arange(len(questions)), shards)):
        rows = [{"id": f"g-{shard:05d}-{i}", "generator": "g", "shard": shard, "question": questions[i],
                 "question_model": "m", "question_seed": 1, "difficulty": None, "response": "r",
                 "score": float(scores[i]), "margin": None,
                 "candidates": 1, "response_model": "m", "reward_model": "r"} for i in part]
        paths.append(folder / f"best-{shard:05d}.parquet")
        write_shard(to_table(rows, BEST), BEST, paths[-1])
        ids.extend(row["id"] for row in rows)
    return paths, ids


def run_dedup(folder, questions, scores, shards=2, ngram=3, num_perm=120, bands=20, threshold=0.8, near_dup=True):
    """The workflow's dedup on `questions`: minhash per shard, a join per band (none when near_dup
    is off), then the groups. Returns (dropped position, kept position, reason) triples."""
    best_paths, ids = write_best_shards(folder, questions, scores, shards)
    minhash_paths = [folder / f"minhash-{shard:05d}.parquet" for shard in range(shards)]
    for best, out in zip(best_paths, minhash_paths):
        minhash_shard(best_path=best, out=out, ngram=ngram, num_perm=num_perm, bands=bands, seed=11)
    band_paths = [folder / f"band-{band:02d}.parquet" for band in range(bands)] if near_dup else []
    for band, out in enumerate(band_paths):
        lsh_band(minhash_paths=minhash_paths, band=band, out=out)
    table = find_duplicates(minhash_paths=minhash_paths, band_paths=band_paths, threshold=threshold,
                            out=folder / "duplicates.parquet")
    position = {row_id: i for i, row_id in enumerate(ids)}
    return [(position[a], position[b], reason) for a, b, reason in
            zip(table["id"].to_pylist(), table["kept_id"].to_pylist(), table["reason"].to_pylist())]


def test_tokens_ignore_case_whitespace_and_prose_punctuation_but_not_operators():
    tokens = tokenize(["What is 2+3?", "what  is 2 + 3", "WHAT IS\n2+3.", "What is 2-3?", "Janet’s ducks"])
    assert tokens.counts.tolist() == [5, 5, 5, 5, 3]
    first, second, third, minus = (tokens.hashes[i * 5:(i + 1) * 5] for i in range(4))
    assert (first == second).all() and (first == third).all()
    assert (first != minus).sum() == 1


def test_a_text_shorter_than_n_is_one_gram_and_an_empty_text_none():
    grams = ngram_hashes(tokenize(["a b", "", "a b c d", "a b"]), 3)
    assert grams.counts.tolist() == [1, 0, 2, 1]
    assert grams.hashes[0] == grams.hashes[3] and grams.hashes[0] not in grams.hashes[1:3]


def test_minhash_signatures_agree_as_often_as_the_sets_overlap():
    rng = random.Random(3)
    universe = [f"w{i}" for i in range(400)]
    errors = []
    for _ in range(60):
        a = set(rng.sample(universe, 80))
        b = set(rng.sample(sorted(a), rng.randint(10, 80))) | set(rng.sample(universe, rng.randint(0, 40)))
        texts = [" ".join(sorted(a)), " ".join(sorted(b))]
        signatures = MinHasher(256, seed=1).signatures(ngram_hashes(tokenize(texts), 1))
        errors.append(abs((signatures[0] == signatures[1]).mean() - len(a & b) / len(a | b)))
    assert np.mean(errors) < 0.03 and max(errors) < 0.1


def test_signatures_depend_on_the_seed_and_nothing_else():
    grams = ngram_hashes(tokenize(["a b c d e f", "x y z"]), 2)
    assert (MinHasher(64, 5).signatures(grams) == MinHasher(64, 5).signatures(grams)).all()
    assert (MinHasher(64, 5).signatures(grams) != MinHasher(64, 6).signatures(grams)).any()


def test_bands_must_divide_the_signature():
    assert lsh_rows(128, 16) == 8
    with pytest.raises(ValueError, match=r"num_perm \(128\) must be a multiple of bands \(10\)"):
        lsh_rows(128, 10)


def test_bucket_pairs_link_each_row_to_the_first_of_its_bucket():
    pairs = bucket_pairs(np.array([7, 3, 7, 9, 3, 7], dtype=np.uint64))
    assert sorted(map(tuple, pairs.tolist())) == [(0, 2), (0, 5), (1, 4)]


def test_pair_jaccard_is_exact_on_shingle_sets():
    sets = ngram_sets(["a b c d e", "a b c d x", "p q r", "a b c d e"], 2)
    similarity = pair_jaccard(sets, np.array([[0, 1], [0, 2], [0, 3]]))
    assert similarity.tolist() == [pytest.approx(3 / 5), 0.0, 1.0]


def test_components():
    labels = connected_components(7, np.array([[5, 6], [1, 4], [4, 6], [0, 2]]))
    assert labels.tolist() == [0, 1, 0, 3, 1, 1, 1]


def test_exact_copies_keep_the_highest_score_then_the_smallest_id():
    ids = pa.array(["g-0-10", "g-0-9", "g-0-2", "g-0-3"])
    rank = rank_rows(ids, np.array([0.5, 0.5, 0.1, 0.9]))
    keys = exact_keys(["What is 2+2?", "what is   2+2", "What is 2+2 ?", "Other"])
    assert best_of_groups(keys, rank).tolist() == [0, 0, 0, 3]  # "g-0-10" < "g-0-9" as strings


def test_dedup_drops_copies_for_the_best_scored_row(tmp_path):
    story = ("Tom has 12 red apples and buys 7 more at the market on Monday, then gives 3 of them to his "
             "sister and eats 2 on the way home. How many apples does Tom have now?")
    questions = [story, story.replace("now?", "now ?"), story.lower().replace(",", "").replace(".", ""),
                 story.replace("the market", "the big market"), "Lucy reads 30 pages a day. How many pages in a week?"]
    found = run_dedup(tmp_path, questions, [0.2, 0.1, 0.3, 0.9, 0.5], shards=2)
    # 1 is an exact copy of 0 (the better scored); 0 and 2 are near-duplicates of 3, the best of the three.
    assert sorted(found) == [(0, 3, "near_duplicate"), (1, 0, "duplicate"), (2, 3, "near_duplicate")]
    assert run_dedup(tmp_path / "exact", questions, [0.2, 0.1, 0.3, 0.9, 0.5], near_dup=False) == [(1, 0, "duplicate")]


def test_planted_near_duplicates_are_removed_and_distinct_questions_kept(tmp_path):
    planted = planted_question_set(3000, near_duplicates=400, seed=5)
    scores = np.random.default_rng(0).random(len(planted.questions))
    found = run_dedup(tmp_path, planted.questions, scores, shards=3)
    group = {i: planted.near_duplicate_of.get(i, i) for i in range(len(planted.questions))}
    true_drops = sum(group[dropped] == group[kept] for dropped, kept, _ in found)
    # A copy is expected to go when its shingle set is within the threshold of its original's.
    expected = [copy for copy, original in planted.near_duplicate_of.items()
                if _jaccard(planted.questions[copy], planted.questions[original]) >= SETTINGS["threshold"]]
    dropped = {row for row, _, _ in found}
    precision = true_drops / len(found)
    recall = sum(copy in dropped or planted.near_duplicate_of[copy] in dropped for copy in expected) / len(expected)
    print(f"near-dup: {len(found)} dropped, precision {precision:.3f}, recall {recall:.3f} on {len(expected)} copies")
    assert precision >= 0.99 and recall >= 0.95
    copied = set(planted.near_duplicate_of) | set(planted.near_duplicate_of.values())
    assert not dropped - copied  # no distinct question is dropped
    assert all(dropped_row != kept for dropped_row, kept, _ in found)  # never drops the row it keeps in its place


def test_an_id_in_two_shards_is_an_error_not_a_duplicate(tmp_path):
    best_paths, _ = write_best_shards(tmp_path, ["What is 1 + 1?", "What is 2 + 2?"], [0.1, 0.2], shards=1)
    minhash_shard(best_path=best_paths[0], out=tmp_path / "m.parquet", ngram=3, num_perm=120, bands=20, seed=11)
    shutil.copy(tmp_path / "m.parquet", tmp_path / "m-copy.parquet")
    with pytest.raises(DuplicateIdError, match="ids that appear in more than one minhash shard: g-00000-0, g-00000-1"):
        find_duplicates(minhash_paths=[tmp_path / "m.parquet", tmp_path / "m-copy.parquet"], band_paths=[],
                        threshold=0.8, out=tmp_path / "duplicates.parquet")


def test_sharding_does_not_change_the_result(tmp_path):
    planted = planted_question_set(600, near_duplicates=80, seed=9)
    scores = np.random.default_rng(1).random(len(planted.questions))
    one = run_dedup(tmp_path / "one", planted.questions, scores, shards=1)
    four = run_dedup(tmp_path / "four", planted.questions, scores, shards=4)
    assert sorted(one) == sorted(four) and len(one) > 50


def _jaccard(a, b, n=SETTINGS["ngram"]):
    return pair_jaccard(ngram_sets([a, b], n), np.array([[0, 1]]))[0]
