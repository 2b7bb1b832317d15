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

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_neardup import write_best_shards

from conftest import SHARED_DATA
from scalequest.config import load_config_files
from scalequest.contamination import METHODS, ScreenSettings, drops, screen_questions
from scalequest.decontam import BenchmarkError, load_benchmark
from scalequest.jsonl import MAX_LINE_BYTES
from scalequest.lexical import LexicalIndex
from scalequest.stages.decontaminate import decontaminate_shard, index_benchmarks, load_benchmark_items, read_lexical
from scalequest.stages.screen import screen_shard
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


KEY = r"release\.decontamination\.benchmarks\.mine"
BAD_BENCHMARK_FILES = [  # (what is at the benchmark's path, regular expressions the message must hold)
    pytest.param(None, [KEY + r"\.path: .*nope\.jsonl: no such file"], id="missing"),
    pytest.param("", [KEY + r": .*nope\.jsonl \(question\) holds no questions \(an empty file\?\)",
                      "Give it the benchmark's items, or remove mine from release.decontamination.benchmarks"],
                 id="empty"),
    pytest.param("\n  \n", [KEY + r": .*nope\.jsonl \(question\) holds no questions"], id="blank lines only"),
    pytest.param("folder", [KEY + r"\.path: .*nope\.jsonl is a folder: give the benchmark's JSONL file"], id="folder"),
    pytest.param('{"question": "What is 1+1?"}\n' + "x" * (MAX_LINE_BYTES + 5) + "\n",
                 [KEY + rf": .*nope\.jsonl:2: a line of {MAX_LINE_BYTES + 5:,} bytes, over the cap of "
                  rf"{MAX_LINE_BYTES:,}", "one JSON array"], id="line over the cap"),
]


@pytest.mark.parametrize("content, parts", BAD_BENCHMARK_FILES)
def test_a_bad_benchmark_file_stops_the_index_job_naming_key_and_file(tmp_path, content, parts):
    """Through index_benchmarks, what rule benchmark_index runs (the command's: test_decontaminate_cli)."""
    path = tmp_path / "nope.jsonl"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    outputs = {name: tmp_path / "out" / name for name in ("items_out", "index_out", "lexical_out", "summary_out")}
    with pytest.raises(BenchmarkError) as caught:
        index_benchmarks(benchmarks={"mine": {"path": str(path), "field": "question"}}, ngram=SETTINGS.ngram,
                         **outputs)
    assert all(re.search(part, str(caught.value)) for part in parts), str(caught.value)
    assert not (tmp_path / "out").exists()


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


@pytest.fixture(scope="module")
def mixed_questions():
    """Questions of every kind a screen meets: the probe set (rephrasings and clean ones), number variants
    of GSM8K and MATH test items, and train questions."""
    _, probes = probe_questions()
    rng = random.Random(8)
    variants = [number_variant(item) for file, field in (FIELDS["gsm8k"], FIELDS["math"])
                for item in rng.sample(read_field(f"{file}.jsonl", field), 100)]
    train = [question for name, field in TRAIN.items() for question in read_field(f"{name}.jsonl", field)[:150]]
    return probes + variants + train


def screen_job(folder, benchmarks, best):
    """The matches file of rule screen (screen_shard) for a best shard, against `benchmarks` ({name: file
    and field}) indexed by rule benchmark_index (index_benchmarks)."""
    files = {"benchmark_items": folder / "items.parquet", "index": folder / "ngrams.npz",
             "lexical": folder / "lexical.npz"}
    entries = {name: {"path": str(path), "field": field} for name, (path, field) in benchmarks.items()}
    index_benchmarks(benchmarks=entries, ngram=SETTINGS.ngram, items_out=files["benchmark_items"],
                     index_out=files["index"], lexical_out=files["lexical"], summary_out=folder / "benchmarks.json")
    screen_shard(best_path=best, minhash_out=folder / "minhash.parquet", ngram=3, num_perm=120, bands=20, seed=7,
                 decontamination=CONFIG, benchmark_files=files, matches_out=folder / "matches.parquet")
    return folder / "matches.parquet"


def benchmark_file(name, folder):
    """(path, field) of a benchmark: a test set or a train set of ../shared/data, or `unrelated`: questions
    of random words that nothing matches."""
    if name == "unrelated":
        path = folder / "unrelated.jsonl"
        path.write_text("".join(json.dumps({"question": q}) + "\n" for q in distinct_questions(1000, seed=4)))
        return path, "question"
    file, field = FIELDS.get(name) or (name, TRAIN[name])
    return SHARED_DATA / f"{file}.jsonl", field


@pytest.mark.parametrize("name, other", [
    ("gsm8k", "unrelated"),  # random words in a question frame
    ("gsm8k", "gsm8k_train"),  # the same authors' style, words and numbers
    ("gsm8k", "math"),  # other mathematics, some words in common
    ("math", "math500"),  # copies of some of its items
    ("math500", "math"),  # every one of its items, and 4,500 more
])
def test_a_verdict_against_a_benchmark_is_the_same_with_another_benchmark_added(tmp_path, mixed_questions, name,
                                                                                 other):
    """What the screen job finds against a benchmark (the screen, item and scores of every match) depends
    on the question and that benchmark alone: its lexical weights are its own, and so are its top k."""
    (best,), _ = write_best_shards(tmp_path, mixed_questions, [0.5] * len(mixed_questions), shards=1)
    files = {benchmark: benchmark_file(benchmark, tmp_path) for benchmark in (name, other)}
    alone = pq.read_table(screen_job(tmp_path / "alone", {name: files[name]}, best)).to_pylist()
    both = pq.read_table(screen_job(tmp_path / "both", files, best)).to_pylist()
    assert [row for row in both if row["benchmark"] == name] == alone
    assert {row["method"] for row in alone} >= {"lexical", "number_variant"}


def test_a_benchmark_nothing_matches_leaves_the_screen_output_byte_identical(tmp_path, mixed_questions):
    (best,), _ = write_best_shards(tmp_path, mixed_questions, [0.5] * len(mixed_questions), shards=1)
    files = {name: benchmark_file(name, tmp_path) for name in ("gsm8k", "unrelated", "math")}
    before = screen_job(tmp_path / "before", {name: files[name] for name in ("gsm8k", "math")}, best)
    after = screen_job(tmp_path / "after", files, best)  # added between the two
    assert pq.read_table(before).num_rows > 100
    assert before.read_bytes() == after.read_bytes()


def test_a_lexical_index_of_the_older_format_says_to_delete_it(tmp_path):
    """Before one index per benchmark, lexical.npz held one over all of them, without `benchmarks`."""
    path = tmp_path / "lexical.npz"
    np.savez(path, **LexicalIndex.build(["What is 1+1?"]).arrays())
    with pytest.raises(ValueError, match=r"lexical\.npz: a lexical index of an older version .* delete it"):
        read_lexical(path)
