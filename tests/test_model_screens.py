"""The contamination screens with models, through the real transformers code path on the tiny LM:
its mean-pooled hidden states as the embedding model, and the tiny LM as the judge (what is tested
there is the parsing and the counting, not its wisdom)."""
import json
import re
import zlib
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import NO_EVALUATION, REPO, copy_run, job_counts, run_snakemake, user_env
from scalequest.answers import parse_verdict
from scalequest.config import load_config_files
from scalequest.contamination import EMBEDDING, JUDGE, build_benchmark_items
from scalequest.engines import Completion, Sampling, open_embedder, open_generator
from scalequest.engines.pooling import pooling_mode
from scalequest.model_screens import ModelScreenSettings, judge_candidates, model_matches, nearest_by_embedding
from scalequest.models import ModelSpec
from scalequest.plan import build_plan
from scalequest.tiny.benchmark import HELDOUT_QUESTIONS

SETTINGS = ModelScreenSettings(top_k=5, min_cosine=0.999, judge_min_joint=0.3, judge_min_cosine=0.9,
                               judge_per_question=2)
ITEMS = ["Tom has 3 apples and buys 5 more. How many apples does he have?",
         "A train travels 60 miles per hour for 3 hours. How far does it go?",
         "Find the remainder when $7^{10}$ is divided by $5$.",
         "What is the area of a circle of radius $4$?"]


def tiny_spec(tiny_models, key="tiny-lm"):
    return ModelSpec(key=key, path=str(tiny_models / "tiny-lm"), engine="hf", dtype="float32", max_model_len=1024,
                     batch_size=4)


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "items.jsonl"
    path.write_text("".join(json.dumps({"question": item}) + "\n" for item in ITEMS))
    return build_benchmark_items({"mine": {"path": str(path), "field": "question"}}, 13)[0]


def test_the_tiny_lm_embeds_through_transformers(tiny_models):
    with open_embedder(tiny_spec(tiny_models)) as engine:
        vectors, truncated = engine.embed_texts(ITEMS + [ITEMS[0], "x " * 2000])
    vectors = np.asarray(vectors)
    assert vectors.shape[0] == 6 and vectors.shape[1] > 8  # the tiny LM's hidden size
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert truncated == 1  # 2000 tokens cut to max_model_len
    assert vectors[0] @ vectors[4] > 0.9999  # the same text in another batch: the same vector
    assert max(vectors[0] @ vectors[i] for i in (1, 2, 3)) < 0.9999


@pytest.mark.vllm
def test_vllm_embeds_as_transformers_does(tiny_models):
    """vLLM's pooling runner, told the model's pooling (mean, as it has no sentence-transformers
    config), gives the hf engine's vectors."""
    vectors = {}
    for engine in ("hf", "vllm"):
        vllm_args = {"enforce_eager": True} if engine == "vllm" else {}
        spec = ModelSpec(key="tiny-lm", path=str(tiny_models / "tiny-lm"), engine=engine, dtype="float32",
                         max_model_len=1024, batch_size=4, vllm_args=vllm_args)
        with open_embedder(spec) as embedder:
            vectors[engine] = np.asarray(embedder.embed_texts(ITEMS)[0])
    assert (vectors["hf"] * vectors["vllm"]).sum(axis=1).min() > 0.9999


def test_sentence_transformers_pooling_is_read_from_the_model(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true, '
                                                        '"pooling_mode_mean_tokens": false}')
    assert pooling_mode(str(tmp_path)) == "cls"
    assert pooling_mode(str(tmp_path / "elsewhere")) == "mean"  # a local path without the config
    assert pooling_mode("nobody/not-in-the-cache") == "mean"  # a hub id the cache does not hold


def test_embedding_screen_matches_what_the_model_finds_the_same(tiny_models, benchmarks):
    questions = [ITEMS[1], "Sam has 4 pears and eats 2. How many are left?", ITEMS[3]]
    with open_embedder(tiny_spec(tiny_models)) as engine:
        def embed(texts, call):
            return np.asarray(engine.embed_texts(texts)[0])

        found = model_matches(questions, benchmarks, SETTINGS, caught={(2, "mine")}, embed=embed, judge=None,
                              counters=Counter())
    # Question 2 is held by an earlier screen: only question 0 is the embedding screen's.
    assert [(match["question"], match["item"], match["method"]) for match in found] == [(0, 1, EMBEDDING)]
    assert found[0]["cosine"] >= 0.999


def test_nearest_by_embedding_is_top_k_by_cosine_then_item():
    items = np.eye(4)
    questions = np.array([[0.0, 1.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    nearest = nearest_by_embedding(questions, items, 2)
    assert nearest.items.tolist() == [[1, 0], [1, 0], [0, 1]]  # ties: the smaller item first
    assert nearest.scores[1].tolist() == pytest.approx([0.8, 0.6])


def test_judge_replies_are_parsed_strictly_and_counted(tiny_models, benchmarks):
    """The tiny LM as the judge: every candidate is counted once as yes, no, no verdict or too long,
    and every Yes (by parse_verdict) is a match carrying the reply."""
    questions = ["Tom has 3 apples and buys 6 more. How many apples does he have now?",
                 "A train goes 60 miles per hour for 2 hours. How far does it travel?",
                 "Find the remainder when $7^{11}$ is divided by $5$."]
    candidates = judge_candidates(questions, benchmarks, SETTINGS, caught=set(), embedded=None)
    assert candidates and len(candidates) <= SETTINGS.judge_per_question * len(questions)
    replies = []
    with open_generator(tiny_spec(tiny_models)) as engine:
        def judge(conversations, call):
            replies.extend(engine.chat(conversations, Sampling(temperature=0.0, max_tokens=48)))
            return replies[-len(conversations):]

        counters = Counter()
        found = model_matches(questions, benchmarks, SETTINGS, caught=set(), embed=None, judge=judge,
                              counters=counters)
    outcomes = Counter("too_long" if reply is None else {None: "no_verdict", True: "yes", False: "no"}[
        parse_verdict(reply.text)] for reply in replies)
    assert counters["judge_candidates"] == len(candidates) == len(replies)
    assert {name: counters[f"judge_{name}"] for name in ("yes", "no", "no_verdict", "too_long")} == {
        name: outcomes[name] for name in ("yes", "no", "no_verdict", "too_long")}
    assert len(found) <= outcomes["yes"]
    assert all(match["method"] == JUDGE and parse_verdict(match["judge_reply"]) for match in found)


def test_a_yes_is_a_match_and_a_no_or_no_verdict_is_not(benchmarks):
    """Scripted replies (the parser's cases): only a final Yes matches, one per (question, benchmark)."""
    questions = ["Tom has 3 apples and buys 5 more apples. How many does he have?",
                 "A train travels 60 miles an hour for 3 hours. How far?",
                 "Find the remainder of $7^{10}$ divided by $5$."]
    script = iter(["Same quantities. Verdict: Yes", "yes, but then... Verdict: No", "I cannot tell."] * 4)

    def judge(conversations, call):
        return [Completion(text=next(script), tokens=5, finished=True) for _ in conversations]

    counters = Counter()
    found = model_matches(questions, benchmarks, SETTINGS, caught=set(), embed=None, judge=judge, counters=counters)
    judged = counters["judge_candidates"]
    assert judged >= 3 and counters["judge_yes"] + counters["judge_no"] + counters["judge_no_verdict"] == judged
    assert len(found) == len({(m["question"], m["benchmark"]) for m in found}) <= counters["judge_yes"]
    assert all(match["judge_reply"].endswith("Verdict: Yes") for match in found)


def bag_of_words(texts, call):
    """A stand-in embedding model: each text's word counts hashed into 256 dimensions, unit length."""
    vectors = np.zeros((len(texts), 256))
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z]+|\d+", text.lower()):
            vectors[row, zlib.crc32(word.encode()) % 256] += 1.0
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def always_yes(conversations, call):
    return [Completion(text="Verdict: Yes", tokens=3, finished=True) for _ in conversations]


MODEL_SCREEN_QUESTIONS = ["A train travels 60 miles per hour for 3 hours. How far does it travel?",  # ITEMS[1]
                          "Tom picks 3 apples, then 5 more. How many apples now?"]  # near ITEMS[0], not as near


@pytest.mark.parametrize("other", [
    pytest.param(["Describe the weather in Paris in spring.", "Name three rivers of Africa."], id="unrelated"),
    pytest.param([MODEL_SCREEN_QUESTIONS[0], MODEL_SCREEN_QUESTIONS[0].replace("?", " in all?"),
                  "Tom picks 3 apples at noon, then 5 more at night. How many apples now?"], id="nearer the questions"),
])
def test_model_screens_against_a_benchmark_do_not_change_with_another_added(tmp_path, other):
    """Top k and the judge's `per_question` count per benchmark: another benchmark's items, nearer to the
    questions, crowd none of this one's out (a stand-in embedding, and a judge that says yes to all)."""
    files = {}
    for name, items in (("mine", ITEMS), ("other", other)):
        files[name] = {"path": str(tmp_path / f"{name}.jsonl"), "field": "question"}
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"question": item}) + "\n" for item in items))
    settings = ModelScreenSettings(top_k=2, min_cosine=0.9, judge_min_joint=1.0, judge_min_cosine=0.5,
                                   judge_per_question=1)
    found = {}
    for benchmarks in (["mine"], ["mine", "other"]):
        index = build_benchmark_items({name: files[name] for name in benchmarks}, 13)[0]
        found[len(benchmarks)] = model_matches(MODEL_SCREEN_QUESTIONS, index, settings, caught=set(),
                                               embed=bag_of_words, judge=always_yes, counters=Counter())
    assert [(match["question"], match["item"], match["method"]) for match in found[1]] == [(0, 1, EMBEDDING),
                                                                                          (1, 0, JUDGE)]
    assert [match for match in found[2] if match["benchmark"] == "mine"] == found[1]


def test_model_screens_in_the_workflow(demo_run, tmp_path):
    """The demo run again with the embedding screen and the judge on (the tiny LM for both): only the
    model_screen jobs, the release and what reads it are planned; run (without the evaluation), the release
    drops what they found, by screen."""
    workdir = copy_run(demo_run, tmp_path / "wf")
    (workdir / "screens.yaml").write_text(
        "release: {decontamination: {embedding: {model: tiny-lm, min_cosine: 0.999}, judge: {enabled: true, "
        "min_joint: 0.5, sampling: {max_tokens: 48}}}}\n")
    screens = ("--profile", "profiles/local", "--configfile", "screens.yaml")
    plan = job_counts(run_snakemake(workdir, *screens, "-n").stdout)
    # and what reads the release: its card, and the evaluation's SFT on it with its answers and table
    evaluation = {"sft_data", "sft", "eval_answers", "evaluate", "report_evaluation"}
    assert set(plan) - {"total"} == {"model_screen", "release", "card", "report_files", "all", *evaluation}, plan
    run_snakemake(workdir, *screens, *NO_EVALUATION, env=user_env())
    results = workdir / "results/tiny"
    sidecars = [json.loads(path.read_text()) for path in sorted((results / "model_matches").glob("*/*.stats.json"))]
    assert sidecars and all(set(s["models"]) == {"embedding", "judge"} for s in sidecars)
    for counters in (s["counters"] for s in sidecars):
        outcomes = sum(counters.get(f"judge_{name}", 0) for name in ("yes", "no", "no_verdict", "too_long"))
        assert outcomes == counters.get("judge_candidates", 0)
    assert sum(s["counters"].get("judge_candidates", 0) for s in sidecars) > 0
    matches = pq.read_table(sorted((results / "model_matches").glob("*/*.parquet"))).to_pylist()
    funnel = json.loads((results / "release/funnel.json").read_text())
    tiny = funnel["decontamination"]["benchmarks"]["tiny"]
    assert funnel["decontamination"]["screens"] == ["ngram", "lexical", "embedding", "judge"]
    assert tiny["items"] == HELDOUT_QUESTIONS and set(tiny["dropped_by"]) == {"ngram", "lexical", "embedding", "judge"}
    dropped = [json.loads(line) for line in (results / "release/contamination.jsonl").read_text().splitlines()]
    by_screen = Counter(record["matches"][0]["method"] for record in dropped)
    assert {name: by_screen[name] for name in tiny["dropped_by"]} == tiny["dropped_by"]
    model_ids = {row["id"] for row in matches}
    assert {record["id"] for record in dropped if record["matches"][0]["method"] in ("embedding", "judge")} <= model_ids
    card = (results / "card/release.md").read_text()  # the release job's card: README.md without the evaluation
    assert "| ngram | lexical | embedding | judge | number variants |" in card


def test_screens_in_the_plan(tmp_path):
    """The full-scale plan gets a model_matches row when a model screen is on, and none by default."""
    screens = tmp_path / "screens.yaml"
    screens.write_text("release: {decontamination: {judge: {enabled: true}}}\n")
    default = build_plan(load_config_files(REPO / "config.yaml"))
    judged = build_plan(load_config_files(REPO / "config.yaml", screens))
    assert "model_matches" not in {row["stage"] for row in default["stages"]}
    row = next(row for row in judged["stages"] if row["stage"] == "model_matches")
    assert row["samples"] == judged["expected_pairs"] and row["jobs"] == 200 and row["gpus_per_job"] == 1
    assert row["gpu_hours"] == round(judged["expected_pairs"] / 100_000, 1)
