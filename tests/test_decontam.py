"""Decontamination against the real benchmark test sets in ../shared/data (never copied here), and
the project's own probe set of rephrased benchmark questions and clean ones (tests/data)."""
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_neardup import write_best_shards

from conftest import SHARED_DATA
from scalequest.config import load_config_files
from scalequest.contamination import METHODS, ScreenSettings, drops, screen_questions
from scalequest.decontam import BenchmarkError, load_benchmark
from scalequest.stages.decontaminate import decontaminate_shard, index_benchmarks, load_benchmark_items
from scalequest.synthetic import distinct_questions, reformat

FIELDS = {"gsm8k": ("gsm8k_test", "question"), "math": ("math_test", "problem"), "math500": ("math500_test", "problem"),
          "college_math": ("college_math_test", "question"), "olympiadbench": ("olympiadbench_test", "question")}
TRAIN = {"gsm8k_train": "question", "math_train": "problem"}
PROBES = Path(__file__).parent / "data" / "contamination_probes.jsonl"
CONFIG = load_config_files(Path(__file__).resolve().parents[1] / "config.yaml")["release"]["decontamination"]
SETTINGS = ScreenSettings.from_config(CONFIG)  # the config's defaults
NGRAM_ONLY = ScreenSettings.from_config({**CONFIG, "lexical": {**CONFIG["lexical"], "enabled": False}})


def benchmark_entries():
    return {name: {"path": str(SHARED_DATA / f"{file}.jsonl"), "field": field}
            for name, (file, field) in FIELDS.items()}


def read_field(file, field):
    with open(SHARED_DATA / file, encoding="utf-8") as handle:
        return [json.loads(line)[field] for line in handle]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benchmarks")
    summary = index_benchmarks(benchmarks=benchmark_entries(), ngram=SETTINGS.ngram, items_out=folder / "items.parquet",
                               index_out=folder / "ngrams.npz", lexical_out=folder / "lexical.npz",
                               summary_out=folder / "benchmarks.json")
    assert {about["name"]: about["items"] for about in summary["benchmarks"]} == {
        "gsm8k": 1319, "math": 5000, "math500": 500, "college_math": 2818, "olympiadbench": 675}
    return load_benchmark_items(items_path=folder / "items.parquet", index_path=folder / "ngrams.npz",
                                lexical_path=folder / "lexical.npz", ngram=SETTINGS.ngram)


def matches_of(index, folder, questions, settings=SETTINGS, methods=("ngram", "lexical")):
    """{question position: {benchmark: (item, score)}} for `questions` run through decontaminate_shard,
    of the matches found by `methods` (score: the n-gram overlap or the lexical joint cosine)."""
    (best,), ids = write_best_shards(folder, questions, [0.5] * len(questions), shards=1)
    table = decontaminate_shard(best_path=best, benchmarks=index, settings=settings, out=folder / "matches.parquet")
    position = {row_id: i for i, row_id in enumerate(ids)}
    found = {}
    for row in table.to_pylist():
        if row["method"] in methods:
            score = row["overlap"] if row["method"] == "ngram" else row["joint"]
            found.setdefault(position[row["id"]], {})[row["benchmark"]] = (row["item"], score)
    return found


@pytest.mark.parametrize("name", ["gsm8k", "math"])
def test_benchmark_questions_verbatim_and_reformatted_are_caught(index, tmp_path, name):
    items = read_field(f"{FIELDS[name][0]}.jsonl", FIELDS[name][1])
    rng = random.Random(0)
    questions = items + [reformat(item, rng) for item in items]  # whitespace, case and punctuation changed
    found = matches_of(index, tmp_path, questions, methods=("ngram",))
    missed = [i for i in range(len(questions)) if name not in found.get(i, {})]
    assert not missed, [questions[i] for i in missed[:3]]
    # The recorded item is the inserted one (or an item with its text: MATH repeats a few), or a
    # shorter item wholly inside it, such as "Express $0.\overline{5}$ as a common fraction."
    assert all(found[i][name][1] == 1.0 for i in range(len(questions)))
    same_text = sum(items[found[i][name][0]].split() == items[i % len(items)].split() for i in range(len(questions)))
    assert same_text >= 0.999 * len(questions)


def test_a_long_benchmark_question_with_one_number_changed_is_still_caught(index, tmp_path):
    items = [item for item in read_field("gsm8k_test.jsonl", "question") if len(item.split()) >= 40][:300]
    edited = [item.replace(next(word for word in item.split() if word.isdigit()), "4321", 1) for item in items
              if any(word.isdigit() for word in item.split())]
    found = matches_of(index, tmp_path, edited)
    assert sum("gsm8k" in found.get(i, {}) for i in range(len(edited))) >= 0.95 * len(edited)


def test_distinct_questions_sharing_common_phrasing_are_not_flagged(index, tmp_path):
    rng = random.Random(1)
    tails = distinct_questions(600, seed=2)
    gsm8k = read_field("gsm8k_test.jsonl", "question")
    # The opening of a real benchmark question, or a stock instruction, then a different problem.
    openings = [" ".join(item.split()[:8]) for item in rng.sample(gsm8k, 300)]
    questions = [f"{opening} {tail}" for opening, tail in zip(openings, tails)]
    questions += [f"{tail} Express your answer as a common fraction in simplest form." for tail in tails[300:]]
    assert matches_of(index, tmp_path / "phrasing", questions) == {}
    # GSM8K train is written like its test set, by the same people; almost none of it matches.
    train = read_field("gsm8k_train.jsonl", "question")
    flagged = matches_of(index, tmp_path / "train", train)
    assert len(flagged) <= 0.001 * len(train)


def test_contamination_rate_of_released_scalequest_samples(index, tmp_path):
    samples = read_field("scalequest_samples.jsonl", "query")
    found = matches_of(index, tmp_path, samples)
    rate = len(found) / len(samples)
    print(f"\nScaleQuest released samples: {len(found)}/{len(samples)} contaminated ({rate:.1%}): {found}")
    assert len(samples) == 100 and 0 <= rate <= 0.05


def test_missing_benchmark_file_names_the_key_and_file(tmp_path):
    message = r"release\.decontamination\.benchmarks\.gsm8k\.path: .*nope\.jsonl: no such file"
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark("gsm8k", {"path": str(tmp_path / "nope.jsonl"), "field": "question", "split": "test"})


@pytest.mark.parametrize("line, message", [
    ('{"question": "What is 2+2?"', r"bad\.jsonl:2: not valid JSON"),
    ('{"problem": "What is 2+2?"}', r"bad\.jsonl:2: no 'question' field"),
    ('["What is 2+2?"]', r"bad\.jsonl:2: expected a JSON object"),
])
def test_bad_benchmark_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "What is 1+1?"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"release\.decontamination\.benchmarks\.mine: .*" + message):
        load_benchmark("mine", {"path": str(path), "field": "question"})


def test_hub_benchmark_offline_is_a_clear_error():
    code = ("from scalequest.decontam import load_benchmark\n"
            "load_benchmark('gsm8k', {'hub': 'openai/gsm8k', 'subset': 'main', 'split': 'test', 'field': 'question'})")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "BenchmarkError: release.decontamination.benchmarks.gsm8k:" in result.stderr
    assert "openai/gsm8k" in result.stderr and "local `path`" in result.stderr


def probe_questions():
    """The probe set (tests/data/contamination_probes.jsonl, written for this project): rephrased
    benchmark test questions, and clean questions (written ones, and train questions named by their
    line in ../shared/data, which are not copied here). Returns (probes, question texts)."""
    probes = [json.loads(line) for line in PROBES.read_text(encoding="utf-8").splitlines()]
    train = {name: read_field(f"{name}.jsonl", field) for name, field in TRAIN.items()}
    return probes, [probe.get("question") or train[probe["source"]][probe["line"] - 1] for probe in probes]


def caught(matches, probe, benchmark_texts):
    """Whether a rephrasing's matches include its source item (or an item with the same text: MATH-500
    repeats MATH test items)."""
    source = benchmark_texts[probe["benchmark"]][probe["item"]]
    return any(benchmark_texts[match["benchmark"]][match["item"]] == source for match in matches)


def screened(index, questions, settings):
    """{question position: its dropping matches}."""
    found = {}
    for match in screen_questions(questions, index, settings):
        if match["method"] != "number_variant":
            found.setdefault(match["question"], []).append(match)
    return found


def test_probe_set_is_rephrased_and_clean(index):
    probes, questions = probe_questions()
    rephrased = [p for p in probes if p["kind"] == "rephrased"]
    clean = [p for p in probes if p["kind"] == "clean"]
    assert len(rephrased) >= 150 and len(clean) >= len(rephrased)
    assert {p["benchmark"] for p in rephrased} == {"gsm8k", "math"}
    assert {p["source"] for p in clean} == {"written", "gsm8k_train", "math_train"}
    texts = {name: read_field(f"{file}.jsonl", field) for name, (file, field) in FIELDS.items()}
    def letters(text):
        return re.sub(r"\W+", "", text.lower())

    for probe, question in zip(probes, questions):
        if probe["kind"] == "rephrased":  # in other words: never the item's text
            assert letters(question) != letters(texts[probe["benchmark"]][probe["item"]])
    # The train questions were picked among those the n-gram screen does not match (known copies
    # of test items exist between the splits: see test_train_questions_matching_test_items).
    train_questions = [q for p, q in zip(probes, questions) if p.get("source") in TRAIN]
    assert screened(index, train_questions, NGRAM_ONLY) == {}


def test_rephrased_benchmark_questions_are_caught_and_clean_ones_are_not(index):
    probes, questions = probe_questions()
    texts = {name: read_field(f"{file}.jsonl", field) for name, (file, field) in FIELDS.items()}
    results = {}
    for name, settings in (("ngram", NGRAM_ONLY), ("ngram+lexical", SETTINGS)):
        found = screened(index, questions, settings)
        rephrased = [i for i, p in enumerate(probes) if p["kind"] == "rephrased"]
        clean = [i for i, p in enumerate(probes) if p["kind"] == "clean"]
        recall = sum(caught(found.get(i, []), probes[i], texts) for i in rephrased) / len(rephrased)
        flagged = [questions[i] for i in clean if i in found]
        results[name] = (recall, len(flagged) / len(clean), flagged)
    print("\nprobe set: " + "; ".join(f"{name}: recall {recall:.3f}, clean flagged {rate:.2%}"
                                     for name, (recall, rate, _) in results.items()))
    recall, rate, flagged = results["ngram+lexical"]
    assert recall >= 0.9 and rate <= 0.01, flagged
    assert results["ngram"][0] <= 0.2  # n-grams alone miss most rephrasings: the probes are real rewrites


def number_variant(text):
    """The same text with every number changed (n -> 3n + 7)."""
    return re.sub(r"\d+", lambda number: str(int(number.group()) * 3 + 7), text)


def test_number_variants_are_reported_apart_and_dropped_only_when_configured(index):
    items = read_field("gsm8k_test.jsonl", "question")
    picked = [i for i in random.Random(5).sample(range(len(items)), 200) if len(items[i].split()) < 40]
    questions = [number_variant(items[i]) for i in picked]
    found = {}
    for match in screen_questions(questions, index, SETTINGS):
        if match["benchmark"] == "gsm8k" and match["item"] == picked[match["question"]]:
            found[match["question"]] = match
    methods = [found[i]["method"] if i in found else None for i in range(len(picked))]
    print(f"\nnumber variants of {len(picked)} GSM8K test items: {Counter(methods)}")
    # Digits changed, number words not: where 13 words in a row survive, the n-gram screen drops it.
    assert methods.count("number_variant") + methods.count("ngram") >= 0.95 * len(picked)
    assert methods.count("number_variant") >= 0.75 * len(picked)
    assert methods.count("lexical") <= 0.02 * len(picked)  # other quantities: not a rephrasing
    variant = next(match for match in found.values() if match["method"] == "number_variant")
    assert variant["text"] >= SETTINGS.variant_min_text and set(variant) >= {"signature", "words", "joint"}
    dropping = ScreenSettings.from_config({**CONFIG, "number_variants": {**CONFIG["number_variants"], "drop": True}})
    assert not drops(variant, SETTINGS.drop_variants) and drops(variant, dropping.drop_variants)


def test_train_questions_matching_test_items(index):
    """GSM8K and MATH train against the test sets: MATH train holds known near-copies of test items
    (the n-gram screen finds them) and rewordings of some (the lexical screen adds those)."""
    found = {}
    for name, field in TRAIN.items():
        questions = read_field(f"{name}.jsonl", field)
        found[name] = Counter()
        for matches in screened(index, questions, SETTINGS).values():
            found[name][min((match["method"] for match in matches), key=METHODS.index)] += 1  # n-gram first
    print(f"\ntrain questions matching a test item, by first screen: {found}")
    assert sum(found["gsm8k_train"].values()) <= 10
    assert found["math_train"]["ngram"] >= 250 and found["math_train"]["lexical"] >= 50
    circles = read_field("math_train.jsonl", "problem")[2782]  # line 2783: math test item 2800, re-typeset
    (match,) = [m for m in screen_questions([circles], index, SETTINGS) if m["benchmark"] == "math"]
    assert (match["method"], match["item"]) == ("lexical", 2800)
