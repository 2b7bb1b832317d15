"""Decontamination against the real benchmark test sets in ../shared/data (never copied here)."""
import json
import os
import random
import subprocess
import sys

import pytest
from test_neardup import write_best_shards

from conftest import SHARED_DATA
from scalequest.decontam import BenchmarkError, load_benchmark
from scalequest.stages.decontaminate import decontaminate_shard, index_benchmarks
from scalequest.synthetic import distinct_questions, reformat

FIELDS = {"gsm8k": ("gsm8k_test", "question"), "math": ("math_test", "problem"), "math500": ("math500_test", "problem"),
          "college_math": ("college_math_test", "question"), "olympiadbench": ("olympiadbench_test", "question")}
NGRAM, MIN_OVERLAP = 13, 0.5  # the config defaults


def benchmark_entries():
    return {name: {"path": str(SHARED_DATA / f"{file}.jsonl"), "field": field}
            for name, (file, field) in FIELDS.items()}


def read_field(file, field):
    with open(SHARED_DATA / file, encoding="utf-8") as handle:
        return [json.loads(line)[field] for line in handle]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benchmarks")
    summary = index_benchmarks(benchmarks=benchmark_entries(), ngram=NGRAM, items_out=folder / "items.parquet",
                               index_out=folder / "ngrams.npz", summary_out=folder / "benchmarks.json")
    assert {about["name"]: about["items"] for about in summary["benchmarks"]} == {
        "gsm8k": 1319, "math": 5000, "math500": 500, "college_math": 2818, "olympiadbench": 675}
    return folder


def matches_of(index, folder, questions):
    """{question position: {benchmark: (item, overlap)}} for `questions` run through decontaminate_shard."""
    (best,), ids = write_best_shards(folder, questions, [0.5] * len(questions), shards=1)
    table = decontaminate_shard(best_path=best, items_path=index / "items.parquet", index_path=index / "ngrams.npz",
                                ngram=NGRAM, min_overlap=MIN_OVERLAP, out=folder / "matches.parquet")
    position = {row_id: i for i, row_id in enumerate(ids)}
    found = {}
    for row in table.to_pylist():
        found.setdefault(position[row["id"]], {})[row["benchmark"]] = (row["item"], row["overlap"])
    return found


@pytest.mark.parametrize("name", ["gsm8k", "math"])
def test_benchmark_questions_verbatim_and_reformatted_are_caught(index, tmp_path, name):
    items = read_field(f"{FIELDS[name][0]}.jsonl", FIELDS[name][1])
    rng = random.Random(0)
    questions = items + [reformat(item, rng) for item in items]  # whitespace, case and punctuation changed
    found = matches_of(index, tmp_path, questions)
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
