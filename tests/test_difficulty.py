"""Difficulty: keep rules and per-shard sampling, labels from a real solver run (bad records
counted), scoring with the context limit, and the scorer's training beating the mean predictor."""
from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from scalequest.keep_rule import KeepRates, KeepRuleError, check_keep_rule, histogram, keep_rates
from scalequest.models import ModelSpec
from scalequest.records import LABELS, SAMPLED, SCORED, SOLVABLE, read_shard, to_table, write_shard
from scalequest.stages.difficulty import label_shard, score_shard
from scalequest.stages.sample import check_sampled_with, gather_scores, sample_shard
from scalequest.stats import ShardStats, StatsError, read_stats, stats_path, write_stats
from scalequest.training.enough import TooFewLabelsError, check_enough_labels
from scalequest.training.job import TrainJob
from scalequest.training.launcher import Launch, train

BINS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def keep(rule, **extra):
    return {"rule": rule, "min_score": 0.1, "count": None, "bins": BINS, "distribution": None, **extra}


def beta_scores(count, seed=0):
    return np.random.default_rng(seed).beta(2, 3, count)


# --- keep rules -----------------------------------------------------------------------------------

def test_min_score_keeps_exactly_the_scores_at_or_above_it():
    scores = beta_scores(10_000)
    rates = keep_rates(scores, keep("min_score", min_score=0.3))
    kept = rates.keep_mask(scores, np.random.default_rng(1))
    assert np.array_equal(kept, scores >= 0.3)


def test_count_keeps_the_hardest_and_splits_ties():
    scores = np.concatenate([beta_scores(1_000), np.full(50, 0.5)])  # 50 ties at the threshold
    above = int(np.sum(scores > 0.5))
    rates = keep_rates(scores, keep("count", count=above + 20))
    kept = rates.keep_mask(scores, np.random.default_rng(2))
    assert np.all(kept[scores > 0.5]) and not np.any(kept[scores < 0.5])
    tied = int(kept[scores == 0.5].sum())
    assert abs(tied - 20) <= 3 * np.sqrt(50 * 0.4 * 0.6)  # binomial(50, 20/50) within 3 sigma
    assert keep_rates(scores, keep("count", count=10**6)).rates == (1.0,)  # more than there are: keep all


def test_distribution_rule_reaches_the_target_shares_within_sampling_noise():
    scores = beta_scores(200_000, seed=3)
    target = [0.1, 0.2, 0.3, 0.2, 0.2]
    rates = keep_rates(scores, keep("distribution", distribution=target))
    kept = np.concatenate([rates.keep_mask(part, np.random.default_rng(seed))  # per shard, per seed
                           for seed, part in enumerate(np.array_split(scores, 40))])
    counts = np.asarray(histogram(scores[kept], BINS))
    total = counts.sum()
    expected = np.asarray(target) * total
    assert np.all(np.abs(counts - expected) <= 4 * np.sqrt(expected) + 1), (counts, expected)
    # The total is the largest the bins allow: the shortest bin is kept whole.
    available = np.asarray(histogram(scores, BINS))
    assert total == pytest.approx(np.min(available / np.asarray(target)), rel=0.02)


def test_distribution_rule_with_a_count_cap():
    scores = beta_scores(50_000, seed=4)
    rates = keep_rates(scores, keep("distribution", distribution=[1, 1, 1, 1, 1], count=5_000))
    kept = rates.keep_mask(scores, np.random.default_rng(0))
    assert abs(int(kept.sum()) - 5_000) <= 4 * np.sqrt(5_000)


def test_same_seed_same_kept_set_other_seed_differs():
    scores = beta_scores(5_000, seed=5)
    rates = keep_rates(scores, keep("distribution", distribution=[1, 2, 3, 2, 1]))
    first = rates.keep_mask(scores, np.random.default_rng(11))
    assert np.array_equal(first, rates.keep_mask(scores, np.random.default_rng(11)))
    assert not np.array_equal(first, rates.keep_mask(scores, np.random.default_rng(12)))
    assert KeepRates.from_json(json.loads(json.dumps(rates.to_json()))) == rates


@pytest.mark.parametrize("bad, message", [
    (keep("count"), "'difficulty.keep.count': rule count needs a count"),
    (keep("distribution"), "'difficulty.keep.distribution': rule distribution needs one share per bin"),
    (keep("distribution", distribution=[1, 2]), "needs one share per bin \\(5 for bins"),
    (keep("distribution", distribution=[0, 0, 0, 0, 0]), "the shares sum to 0"),
    (keep("distribution", distribution=[1] * 4, bins=[0, 0.5, 0.2, 0.9, 1]),
     "'difficulty.keep.bins': edges must increase"),
])
def test_bad_keep_rules_name_the_key(bad, message):
    with pytest.raises(KeepRuleError, match=message):
        check_keep_rule(bad)


def test_histogram_puts_outliers_in_the_outer_bins():
    assert histogram([-0.5, 0.0, 0.19, 0.2, 0.99, 1.0, 1.7], BINS) == [3, 1, 0, 0, 3]


# --- per-shard sampling ---------------------------------------------------------------------------

def difficulty_rows(count, shard, seed):
    scores = beta_scores(count, seed)
    return [{"id": f"g-{shard:05d}-{i}", "generator": "g", "shard": shard, "question": f"q{i}", "question_model": "m",
             "question_seed": 1, "difficulty": float(s), "difficulty_model": "scorer"} for i, s in enumerate(scores)]


def write_difficulty_shards(folder, shards=4, count=500):
    paths = []
    for shard in range(shards):
        path = folder / f"difficulty-{shard}.parquet"
        write_shard(to_table(difficulty_rows(count, shard, shard), SCORED), SCORED, path)
        paths.append(path)
    return paths


def test_gather_then_sample_conserves_counts_and_reproduces(tmp_path):
    paths = write_difficulty_shards(tmp_path)
    rates_path = tmp_path / "keep_rates.json"
    summary = gather_scores(difficulty_paths=paths, keep=keep("count", count=1_200), out=rates_path)
    assert summary["questions"] == 2_000 and sum(summary["histogram"]) == 2_000
    assert summary["expected_kept"] == pytest.approx(1_200, abs=0.5)
    kept_total, kept_ids = 0, []
    for shard, path in enumerate(paths):
        out = tmp_path / f"sample-{shard}.parquet"
        stats = sample_shard(generator="g", shard=f"{shard:05d}", difficulty_path=path, keep_rates_path=rates_path,
                             seed=100 + shard, out=out)
        funnel = read_stats(stats_path(out))["questions"]
        assert funnel.total == 500 == funnel.kept + funnel.dropped["too_easy"]
        table = read_shard(out, SAMPLED)
        assert table.num_rows == stats.questions.kept
        kept_total += table.num_rows
        kept_ids += table.column("id").to_pylist()
    assert kept_total == 1_200  # count: exact (no ties among continuous scores)
    again = tmp_path / "again.parquet"
    sample_shard(generator="g", shard="00000", difficulty_path=paths[0], keep_rates_path=rates_path, seed=100,
                 out=again)
    assert read_shard(again, SAMPLED).column("id").to_pylist() == [i for i in kept_ids if i.startswith("g-00000-")]


def test_release_refuses_samples_drawn_with_other_rates(tmp_path):
    paths = write_difficulty_shards(tmp_path, shards=1)
    rates_path = tmp_path / "keep_rates.json"
    gather_scores(difficulty_paths=paths, keep=keep("min_score", min_score=0.4), out=rates_path)
    out = tmp_path / "sample.parquet"
    sample_shard(generator="g", shard="00000", difficulty_path=paths[0], keep_rates_path=rates_path, seed=1, out=out)
    sidecars = {("g", "00000"): read_stats(stats_path(out))}
    check_sampled_with(sidecars, rates_path)
    gather_scores(difficulty_paths=paths, keep=keep("min_score", min_score=0.5), out=rates_path)
    with pytest.raises(StatsError,
                       match=r"1 sample shard\(s\) were drawn with older keep rates.*g/00000.*--forcerun respond"):
        check_sampled_with(sidecars, rates_path)


def test_too_few_labels_says_how_many_and_why(tmp_path):
    path = tmp_path / "labels.parquet"
    write_shard(LABELS.schema.empty_table().replace_schema_metadata(LABELS.metadata()), LABELS, path)
    stats = ShardStats("difficulty_labels", "seeds", "00000", 0, {})
    stats.questions.drop("no_gold", 7)
    stats.questions.drop("unparsable_gold", 2)
    write_stats(stats_path(path), stats)
    with pytest.raises(TooFewLabelsError, match=r"hold 0 labelled seed questions of 9.*no_gold: 7, unparsable_gold: 2"):
        check_enough_labels([path], 5)


# --- real models: labels, scoring, scorer training ------------------------------------------------

def tiny_spec(tiny_models, name="tiny-lm", **overrides):
    fields = dict(key=name, path=str(tiny_models / name), engine="hf", dtype="float32", max_model_len=512,
                  batch_size=16)
    return ModelSpec(**{**fields, **overrides})


def test_labels_count_records_without_usable_gold_and_prompts_too_long(tiny_models, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    rows = [
        {"question": "Tom has 3 apples and buys 4 more. How many apples does Tom have now?", "source": "t",
         "answer": "7", "answer_format": "plain"},
        {"question": "What is 2 + 2?", "source": "gsm8k", "answer": "Add them. #### 4", "answer_format": "gsm8k"},
        {"question": "How many apples?", "source": "t", "answer": None, "answer_format": "plain"},
        {"question": "Find x.", "source": "math", "answer": "So the answer is $\\boxed{}$.", "answer_format": "boxed"},
        {"question": "Solve it.", "source": "gsm8k", "answer": "no marker here", "answer_format": "gsm8k"},
        {"question": "What is " + " + ".join(["1"] * 400) + "?", "source": "t", "answer": "400",
         "answer_format": "plain"},
    ]
    seeds.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "labels.parquet"
    stats = label_shard(part="00000", seeds_path=seeds, first=0, count=10, solver=tiny_spec(tiny_models), k=3,
                        sampling={"temperature": 1.0, "top_p": 1.0, "max_tokens": 48}, seed=1, chunk_size=2, out=out)
    funnel = read_stats(stats_path(out))["questions"]
    assert funnel.total == 6 and funnel.kept == 2
    assert dict(funnel.dropped) == {"no_gold": 2, "unparsable_gold": 1, "prompt_too_long": 1}
    labels = read_shard(out, LABELS).to_pylist()
    assert [row["id"] for row in labels] == ["seeds-0", "seeds-1"]
    assert [row["gold"] for row in labels] == ["7", "4"]
    for row in labels:
        assert row["samples"] == 3 and row["fail_rate"] == pytest.approx(1 - row["correct"] / 3)
    graded = sum(stats.counters[f"answers_{g}"] for g in ("correct", "wrong", "no_answer", "truncated"))
    assert graded == 6 == stats.responses.kept


def test_scoring_counts_questions_longer_than_the_scorer_context(tiny_models, tmp_path):
    questions = ["What is 2 + 3?", "Each box holds 4 pens. How many pens are in 6 boxes? " * 12]
    rows = [{"id": f"g-00000-{i}", "generator": "g", "shard": 0, "question": q, "question_model": "m",
             "question_seed": 1, "difficulty": None, "judge_reply": "Verdict: Yes", "judge_model": "j"}
            for i, q in enumerate(questions)]
    path = tmp_path / "filter.parquet"
    write_shard(to_table(rows, SOLVABLE), SOLVABLE, path)
    out = tmp_path / "difficulty.parquet"
    stats = score_shard(generator="g", shard="00000", questions_path=path,
                        scorer=tiny_spec(tiny_models, "tiny-reward", max_model_len=64), seed=0, chunk_size=1000,
                        out=out)
    assert stats.counters["truncated_inputs"] == 1 and stats.questions.kept == 2
    scored = read_shard(out, SCORED).to_pylist()
    assert all(isinstance(row["difficulty"], float) for row in scored)
    assert {row["difficulty_model"] for row in scored} == {str(tiny_models / "tiny-reward")}


SCORER_HYPER = dict(epochs=4, max_steps=-1, learning_rate=1e-3, lr_scheduler="cosine", warmup=0.05, max_length=64,
                    per_device_batch_size=16, gradient_accumulation_steps=1, bf16=True, eval_fraction=0.2,
                    logging_steps=10)


def learnable_labels(folder, count=320, parts=2):
    """Label shards whose fail rate follows the question's kind (one-step sums are easy, equations
    hard) plus noise: the test's own labels, since the tiny solver fails nearly everything."""
    rng = random.Random(0)
    rows = []
    for index in range(count):
        a, b, k = rng.randint(2, 60), rng.randint(2, 40), rng.randint(2, 9)
        if index % 2:
            question, base = f"Tom has {a} apples and buys {b} more. How many apples does Tom have now?", 0.1
        else:
            question, base = f"If {k}x + {b} = {k * a + b}, what is the value of x?", 0.9
        rows.append({"id": f"seeds-{index}", "source": "test", "question": question, "gold": "0", "correct": 0,
                     "samples": 8, "fail_rate": min(1.0, max(0.0, base + rng.uniform(-0.1, 0.1))),
                     "solver_model": "none"})
    paths = []
    for part, chunk in enumerate(np.array_split(np.arange(count), parts)):
        path = folder / f"{part:05d}.parquet"
        write_shard(to_table([rows[i] for i in chunk], LABELS), LABELS, path)
        stats = ShardStats("difficulty_labels", "seeds", f"{part:05d}", 0, {})
        stats.questions.keep(len(chunk))
        write_stats(stats_path(path), stats)
        paths.append(str(path))
    return paths


@pytest.fixture(autouse=True)
def cpu_training_env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", os.environ.get(
        "TORCH_EXTENSIONS_DIR", str(tmp_path_factory.getbasetemp() / "torch_extensions")))


@pytest.mark.training
def test_scorer_beats_the_mean_predictor_on_held_out_labels(tiny_models, tmp_path):
    data = learnable_labels(tmp_path)
    assert check_enough_labels(data, 100) == 320
    metrics = train(TrainJob(kind="scorer", base_model=str(tiny_models / "tiny-lm"), data=data, output_dir="",
                             prompt_style=None, hyper=SCORER_HYPER, seed=3),
                    tmp_path / "scorer", Launch(processes_per_node=1))
    assert metrics["held_out_questions"] == 64
    assert metrics["held_out_mse"] < 0.5 * metrics["mean_predictor_mse"], metrics
    assert metrics["held_out_pearson"] > 0.8
    with open_scorer_engine(tmp_path / "scorer") as scorer:  # the saved head scores questions as trained
        scores, _ = scorer.score_texts(["If 3x + 4 = 19, what is the value of x?",
                                        "Tom has 5 apples and buys 3 more. How many apples does Tom have now?"])
    assert scores[0] > scores[1] + 0.3


def open_scorer_engine(path, engine="hf"):
    from scalequest.engines import open_scorer

    return open_scorer(ModelSpec(key="scorer", path=str(path), engine=engine, dtype="float32", max_model_len=64,
                                 vllm_args={"enforce_eager": True}))


@pytest.mark.training
@pytest.mark.vllm
def test_scorer_trains_on_two_ranks_with_zero3_and_scores_in_vllm(tiny_models, tmp_path):
    data = learnable_labels(tmp_path)
    metrics = train(TrainJob(kind="scorer", base_model=str(tiny_models / "tiny-lm"), data=data, output_dir="",
                             prompt_style=None, hyper=SCORER_HYPER, seed=3, deepspeed="zero3"), tmp_path / "scorer",
                    Launch(processes_per_node=2))
    assert metrics["world_size"] == 2 and metrics["deepspeed"] == "zero3"
    assert metrics["held_out_mse"] < metrics["mean_predictor_mse"]
    questions = ["If 3x + 4 = 19, what is the value of x?", "Tom has 5 apples and buys 3 more. How many now?"]
    scores = {}
    for engine in ("hf", "vllm"):
        with open_scorer_engine(tmp_path / "scorer", engine) as scorer:
            scores[engine] = scorer.score_texts(questions)[0]
    assert scores["vllm"] == pytest.approx(scores["hf"], abs=1e-4)
