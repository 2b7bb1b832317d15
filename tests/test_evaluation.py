"""The evaluation: gold answers through the grader, the graded records and the table of scores, and
SFT through the launcher on a task whose right answers are learnable (1 process, and 2 ranks with
DeepSpeed ZeRO-3), scored by the evaluation's own stage on the tiny model."""
from __future__ import annotations

import json
import os
import re
import signal
import socket

import pyarrow.parquet as pq
import pytest

from conftest import REPO, SHARED_DATA
from scalequest.answers import last_box
from scalequest.config import ConfigError, load_config_files, merge_into, validate_config
from scalequest.engines import Completion
from scalequest.evaluation.items import load_items, write_items
from scalequest.evaluation.records import EVAL_ANSWERS, VERDICTS
from scalequest.evaluation.scores import collect_scores, render_table, wilson_interval
from scalequest.models import ModelSpec
from scalequest.records import to_table, write_shard
from scalequest.stages.evaluate import evaluate_shard, majority, verdict
from scalequest.training.job import TrainJob
from scalequest.training.launcher import Launch, train
from training_runs import complete_checkpoints, signal_every_process, start_training, wait_until, weight_difference

GSM8K = {"path": str(SHARED_DATA / "gsm8k_test.jsonl"), "field": "question", "answer_field": "answer",
         "answer_format": "gsm8k"}
MATH500 = {"path": str(SHARED_DATA / "math500_test.jsonl"), "field": "problem", "answer_field": "answer",
           "answer_format": "plain"}


def solutions(path: str, field: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)[field] for line in handle if line.strip()]


def changed_gsm8k(solution: str) -> str:
    """The solution with its final number, after the last ####, one more."""
    head, _, tail = solution.rpartition("####")
    return f"{head}#### {int(tail.strip().replace(',', '')) + 1}"


def changed_boxed(solution: str) -> str:
    """The solution with its last \\boxed{} answer changed: one more, or "+ 1" added to an expression."""
    answer = last_box(solution)
    start = solution.index(answer, max(solution.rfind("\\boxed"), solution.rfind("\\fbox")))
    number = re.fullmatch(r"-?\d+", answer.strip())
    new = str(int(answer) + 1) if number else f"{answer} + 1"
    return solution[:start] + new + solution[start + len(answer):]


def score(responses: list[str], golds: list[str | None]) -> float:
    graded = [verdict(Completion(text, 0, True), gold)[1] for text, gold in zip(responses, golds)]
    return graded.count("correct") / len(golds)


@pytest.mark.parametrize("entry, field, change", [(GSM8K, "answer", changed_gsm8k),
                                                  (MATH500, "solution", changed_boxed)], ids=["gsm8k", "math500"])
def test_gold_solutions_score_all_and_changed_answers_none(entry, field, change):
    """The grader path of the evaluation: each test item's gold solution, written as a response, is
    right against the gold answer the evaluation reads; the same with its final answer changed is wrong."""
    golds = [item["gold"] for item in load_items("bench", entry)]
    answers = solutions(entry["path"], field)
    right, changed = score(answers, golds), score([change(text) for text in answers], golds)
    print(f"\n{entry['path']}: gold solutions {right:.4f} correct, changed answers {changed:.4f} correct")
    assert right >= 0.995 and changed <= 0.005


def test_olympiadbench_lists_are_gold_answers():
    items = load_items("olympiadbench", {"path": str(SHARED_DATA / "olympiadbench_test.jsonl"), "field": "question",
                                         "answer_field": "final_answer", "answer_format": "plain"})
    assert len(items) == 675 and items[0]["gold"] == "2" and all(item["gold"] for item in items)


@pytest.mark.parametrize("override, message", [
    ({"evaluation": {"benchmarks": ["gsm8k", "aime"]}},
     "'evaluation.benchmarks': no benchmark 'aime' in release.decontamination.benchmarks"),
    ({"release": {"decontamination": {"benchmarks": {"gsm8k": {"answer_field": None}}}}},
     "'release.decontamination.benchmarks.gsm8k.answer_field'"),
    ({"evaluation": {"base_models": ["qwen2-math-8b"]}},
     "'evaluation.base_models[0]': unknown model key 'qwen2-math-8b'"),
    ({"evaluation": {"sft": {"models": {"llama3-8b": {"learning_rate": 0}}}}},
     "'evaluation.sft.models.llama3-8b': 0 is less than or equal to the minimum of 0"),
    ({"evaluation": {"sft": {"models": {"deepseek-math-7b-rl": {"epochs": 1}}}}},
     "'evaluation.sft.models.deepseek-math-7b-rl': not in evaluation.base_models"),
    ({"evaluation": {"datasets": {"none": {"release": True}}}}, "'evaluation.datasets'"),
    ({"evaluation": {"datasets": {"mine": {"path": "a.jsonl", "hub": "b/c"}}}}, "'evaluation.datasets.mine'"),
])
def test_a_bad_evaluation_setting_names_its_key(override, message):
    config = merge_into(load_config_files(REPO / "config.yaml"), override)
    if override.get("release"):  # None stands for "left out"
        del config["release"]["decontamination"]["benchmarks"]["gsm8k"]["answer_field"]
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(config)


def test_verdicts_and_the_majority():
    assert verdict(Completion("So \\boxed{18}.", 5, True), "18") == ("18", "correct")
    assert verdict(Completion("So \\boxed{18}, and then", 5, False), "18") == ("18", "correct")
    assert verdict(Completion("So \\boxed{17}, and then", 5, False), "18") == ("17", "truncated")
    assert verdict(Completion("It is 17.", 5, True), "18") == (None, "no_answer")
    assert verdict(Completion("So \\boxed{17}.", 5, True), None) == ("17", "no_gold")
    assert majority(["1/2", None, "0.5", "3", "3"]) == "1/2"  # 1/2 and 0.5 are one answer, found first
    assert majority([None, None]) is None


def test_wilson_interval():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def answer_rows(label: str, dataset: str, correct: list[int], samples: int = 1) -> list[dict]:
    return [{"id": f"b-{item}", "benchmark": "b", "item": item, "model": label, "dataset": dataset, "question": "q",
             "gold": "1", "responses": ["r"] * samples, "answers": ["1"] * samples,
             "verdicts": ["correct"] * hits + ["wrong"] * (samples - hits), "correct": hits,
             "majority_answer": "1" if 2 * hits > samples else None, "majority_correct": 2 * hits > samples}
            for item, hits in enumerate(correct)]


def test_scores_are_recounted_from_the_records_and_cover_every_item(tmp_path):
    bench = tmp_path / "b.jsonl"
    bench.write_text("".join(json.dumps({"q": f"q{i}", "a": "1"}) + "\n" for i in range(4)))
    items = tmp_path / "b.parquet"
    write_items("b", {"path": str(bench), "field": "q", "answer_field": "a", "answer_format": "plain"}, items)
    rows = [{"label": "Qwen/Qwen2-Math-7B", "dataset": "mine", "base_path": "Qwen/Qwen2-Math-7B", "release": True}]
    shard = tmp_path / "answers.parquet"
    write_shard(to_table(answer_rows("Qwen/Qwen2-Math-7B", "mine", [3, 0, 2, 1], samples=3), EVAL_ANSWERS),
                EVAL_ANSWERS, shard)
    scores = collect_scores(answer_paths=[shard], item_paths={"b": items}, rows=rows, samples=3, absent={})
    cell = scores["rows"][0]["scores"]["b"]
    assert (cell["items"], cell["correct"], cell["accuracy"]) == (4, 2.0, 0.5)
    assert cell["pass@3"] == 0.75 and cell["maj@3"] == 0.5 and cell["verdicts"] == {"correct": 6, "wrong": 6}
    table = render_table(scores)
    assert "| Qwen/Qwen2-Math-7B | mine | 50.0 (" in table and "; pass@3 75.0, maj@3 50.0 |" in table
    assert "↳ paper, Table 1" in table
    write_shard(to_table(answer_rows("Qwen/Qwen2-Math-7B", "mine", [1, 1, 1]), EVAL_ANSWERS), EVAL_ANSWERS, shard)
    with pytest.raises(ValueError, match="the records hold 3 items, not each of the benchmark's 4 once"):
        collect_scores(answer_paths=[shard], item_paths={"b": items}, rows=rows, samples=1, absent={})


def test_items_without_a_gold_answer_are_counted_in_the_log_the_sidecar_and_the_table(tmp_path, capsys):
    """Some items without a gold answer: the job goes on, and the count shows where a reader looks."""
    bench = tmp_path / "b.jsonl"
    answers = ["#### 1", None, "   ", "1", "#### 1", "#### 1"]  # null, blank, not gsm8k, and one with no field
    bench.write_text("".join(json.dumps({"q": f"q{i}", "a": a}) + "\n" for i, a in enumerate(answers))
                     + json.dumps({"q": "q6"}) + "\n")
    items = tmp_path / "b.parquet"
    stats = write_items("b", {"path": str(bench), "field": "q", "answer_field": "a", "answer_format": "gsm8k"}, items)
    assert dict(stats.counters) == {"no_gold": 4, "no_answer": 3, "unreadable_answer": 1}
    log = capsys.readouterr().out
    for part in ("b: 7 items, 4 without a gold answer, counted wrong for every model:",
                 "  3 with no 'a' (absent, null or blank): items 1, 2, 6",
                 "  1 whose 'a' holds no answer answer_format gsm8k reads: item 3"):
        assert part in log, log
    rows = [{"label": "m", "dataset": "none", "base_path": "m", "release": False}]
    shard = tmp_path / "answers.parquet"
    write_shard(to_table(answer_rows("m", "none", [1, 0, 0, 0, 1, 1, 0]), EVAL_ANSWERS), EVAL_ANSWERS, shard)
    scores = collect_scores(answer_paths=[shard], item_paths={"b": items}, rows=rows, samples=1, absent={})
    assert scores["benchmarks"] == {"b": {"items": 7, "no_gold": 4}}
    table = render_table(scores)
    assert "| model | fine-tuned on | b (4 items without a gold answer, graded wrong) | average |" in table


# --- SFT on a learnable task, scored by the evaluation stage --------------------------------------------------------

# The task: how many of something there are (a triangle's sides, a week's days, ...), asked by other names in
# the test than in training. The answer is a fact to remember, which the tiny LM does not know and learns in
# a hundred steps: its only arithmetic is templated word problems.
FACTS = {"sides does a triangle have": 3, "sides does a square have": 4, "sides does a pentagon have": 5,
         "sides does a hexagon have": 6, "sides does an octagon have": 8, "days are in a week": 7,
         "months are in a year": 12, "legs does a spider have": 8, "hours are in a day": 24,
         "minutes are in an hour": 60, "cents are in a dollar": 100, "eggs are in a dozen": 12}
SFT_HYPER = dict(epochs=10, max_steps=-1, learning_rate=1e-3, lr_scheduler="cosine", warmup=0.05, max_length=256,
                 per_device_batch_size=8, gradient_accumulation_steps=1, bf16=True, eval_fraction=0.0,
                 logging_steps=10, packing=False)


def fact_question(name: str, fact: str) -> str:
    return f"{name} wants to know: how many {fact}?"


@pytest.fixture(scope="module")
def facts_task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("facts")
    train_names = ("Tom", "Anna", "Ben", "Lucy", "Omar", "Mia", "Ravi", "Sara")
    test_names = ("Leo", "Emma", "Noah", "Zoe")
    pairs = [{"question": fact_question(name, fact),
              "response": f"Everyone knows how many {fact}: {count}. The answer is \\boxed{{{count}}}."}
             for name in train_names for fact, count in FACTS.items()]
    tests = [{"question": fact_question(name, fact), "answer": count}
             for name in test_names for fact, count in FACTS.items()]
    (folder / "pairs.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    (folder / "test.jsonl").write_text("".join(json.dumps(item) + "\n" for item in tests))
    write_items("facts", {"path": str(folder / "test.jsonl"), "field": "question", "answer_field": "answer",
                          "answer_format": "plain"}, folder / "items.parquet")
    return folder


@pytest.fixture(autouse=True)
def cpu_training_env(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", os.environ.get("TORCH_EXTENSIONS_DIR",
                                                              str(tmp_path_factory.getbasetemp() / "torch_extensions")))


def accuracy(model_path, folder, label: str) -> float:
    spec = ModelSpec(key=label, path=str(model_path), engine="hf", dtype="float32", max_model_len=512, batch_size=16)
    stats = evaluate_shard(items_path=folder / "items.parquet", shard="00000", shards=1, model=spec, label=label,
                           dataset="facts", samples=1, sampling={"temperature": 0.0, "top_p": 1.0, "max_tokens": 48},
                           seed=1, chunk_size=64, out=folder / f"{label}.parquet")
    return stats.counters["correct"] / stats.questions.kept


@pytest.fixture(scope="module")
def base_accuracy(tiny_models, facts_task):
    return accuracy(tiny_models / "tiny-lm", facts_task, "base")


def sft_job(tiny_models, facts_task, ranks: int, deepspeed: str) -> TrainJob:
    """The tiny LM fine-tuned on the facts task with a global batch of 8 (per rank: 8 / ranks)."""
    return TrainJob(kind="sft", base_model=str(tiny_models / "tiny-lm"), data=str(facts_task / "pairs.jsonl"),
                    output_dir="", prompt_style=None,
                    hyper={**SFT_HYPER, "per_device_batch_size": SFT_HYPER["per_device_batch_size"] // ranks},
                    seed=3, deepspeed=deepspeed)


def sft_run(tiny_models, facts_task, folder, ranks: int, deepspeed: str) -> tuple:
    out = folder / "sft"
    metrics = train(sft_job(tiny_models, facts_task, ranks, deepspeed), out, Launch(processes_per_node=ranks))
    return out, metrics


@pytest.fixture(scope="module")
def sft_one_process(tiny_models, facts_task, tmp_path_factory):
    return sft_run(tiny_models, facts_task, tmp_path_factory.mktemp("sft-1"), 1, "none")


@pytest.fixture(scope="module")
def sft_two_ranks_zero3(tiny_models, facts_task, tmp_path_factory):
    return sft_run(tiny_models, facts_task, tmp_path_factory.mktemp("sft-2"), 2, "zero3")


def test_k_samples_give_pass_and_majority_at_k(tiny_models, facts_task, tmp_path):
    """Sampled answers (temperature 1): k responses per item, each graded, and the table's pass@k and maj@k."""
    spec = ModelSpec(key="base", path=str(tiny_models / "tiny-lm"), engine="hf", dtype="float32", max_model_len=512,
                     batch_size=16)
    out = tmp_path / "k.parquet"
    stats = evaluate_shard(items_path=facts_task / "items.parquet", shard="00001", shards=2, model=spec, label="base",
                           dataset="none", samples=4, sampling={"temperature": 1.0, "top_p": 1.0, "max_tokens": 48},
                           seed=2, chunk_size=16, out=out)
    records = pq.read_table(out).to_pylist()
    assert [record["item"] for record in records] == list(range(24, 48)) and stats.questions.kept == 24
    assert all(len(record["responses"]) == len(record["verdicts"]) == 4 for record in records)
    assert sum(stats.counters[verdict] for verdict in VERDICTS) == 4 * 24
    assert len({record["responses"][0] for record in records}) > 1  # sampled, not one greedy text
    rows = [{"label": "base", "dataset": "none", "base_path": "x", "release": False}]
    answers = [out, tmp_path / "k0.parquet"]
    evaluate_shard(items_path=facts_task / "items.parquet", shard="00000", shards=2, model=spec, label="base",
                   dataset="none", samples=4, sampling={"temperature": 1.0, "top_p": 1.0, "max_tokens": 48},
                   seed=3, chunk_size=16, out=answers[1])
    cell = collect_scores(answer_paths=answers, item_paths={"facts": facts_task / "items.parquet"}, rows=rows,
                          samples=4, absent={})["rows"][0]["scores"]["facts"]
    assert cell["items"] == 48 and cell["pass@4"] >= cell["accuracy"] and 0 <= cell["maj@4"] <= cell["pass@4"]


@pytest.mark.training
@pytest.mark.parametrize("run, ranks, deepspeed", [("sft_one_process", 1, "none"), ("sft_two_ranks_zero3", 2, "zero3")])
def test_sft_model_scores_clearly_above_its_base_model(request, facts_task, base_accuracy, run, ranks, deepspeed):
    """The same global batch and steps on 1 process and on 2 ranks with ZeRO-3.

    Slow: 120 SFT steps each, the ZeRO-3 run with 2 ranks on 2 cores (about a minute)."""
    out, metrics = request.getfixturevalue(run)
    assert (metrics["world_size"], metrics["deepspeed"], metrics["steps"]) == (ranks, deepspeed, 120)
    after = accuracy(out, facts_task, f"sft-{ranks}")
    print(f"\nfacts task, {ranks} rank(s) {deepspeed}: base {base_accuracy:.3f}, after SFT {after:.3f}")
    assert base_accuracy <= 0.1 and after >= base_accuracy + 0.5


@pytest.mark.training
def test_two_zero3_ranks_stopped_by_sigusr1_resume_to_the_same_model(sft_two_ranks_zero3, tiny_models, facts_task,
                                                                     tmp_path):
    """The profile's warning before the time limit (SIGUSR1 to every process of the job): both ranks save
    their ZeRO-3 shards at the next step and exit non-zero; the retry resumes there and ends with the
    uninterrupted run's weights (sft_two_ranks_zero3).

    Slow: a 2-rank ZeRO-3 SFT, interrupted, then resumed (about a minute)."""
    baseline, metrics = sft_two_ranks_zero3
    out, logs = tmp_path / "sft", [tmp_path / "first.log", tmp_path / "second.log"]
    job = sft_job(tiny_models, facts_task, 2, "zero3")
    first = start_training(job, 2, out, logs[0])
    wait_until(lambda: "'loss'" in logs[0].read_text(), first, logs[0])  # a few steps in
    signal_every_process(first, signal.SIGUSR1)
    assert first.wait(timeout=600) != 0
    text = logs[0].read_text()
    saved = complete_checkpoints(out)
    step = int(saved[-1].name.split("-")[1])
    assert len(saved) == 1 and 0 < step < metrics["steps"], text[-4000:]
    assert all(f"rank {rank} of 2 on host {socket.gethostname()}: interrupted by SIGUSR1 at step {step}" in text
               for rank in (0, 1)), text[-4000:]
    assert f"the retry resumes from {saved[-1]}" in text
    shards = sorted(path.name for path in (saved[-1] / f"global_step{step}").iterdir())
    assert len([name for name in shards if "optim_states" in name]) == 2, shards  # each rank's optimizer shard
    second = start_training(job, 2, out, logs[1])
    assert second.wait(timeout=600) == 0, logs[1].read_text()[-4000:]
    assert f"resuming sft {out}: step {step} of {metrics['steps']} (checkpoint of " in logs[1].read_text()
    difference = weight_difference(out, baseline)
    print(f"\nresumed 2-rank ZeRO-3 SFT vs uninterrupted: largest weight difference {difference}")
    assert difference <= 1e-6


@pytest.mark.training
@pytest.mark.vllm
def test_the_zero3_sft_model_answers_the_same_in_vllm(sft_two_ranks_zero3, facts_task, tmp_path):
    """The model the 2 ranks saved (gathered from ZeRO-3 shards) loads in vLLM, which answers every item as
    transformers does (greedy)."""
    out, _ = sft_two_ranks_zero3
    records = {}
    for engine in ("hf", "vllm"):
        spec = ModelSpec(key="sft", path=str(out), engine=engine, dtype="float32", max_model_len=512, batch_size=16,
                         vllm_args={"enforce_eager": True})
        evaluate_shard(items_path=facts_task / "items.parquet", shard="00000", shards=1, model=spec, label="sft",
                       dataset="facts", samples=1, sampling={"temperature": 0.0, "top_p": 1.0, "max_tokens": 48},
                       seed=1, chunk_size=64, out=tmp_path / f"{engine}.parquet")
        records[engine] = pq.read_table(tmp_path / f"{engine}.parquet").select(["responses", "verdicts"]).to_pylist()
    assert records["hf"] == records["vllm"]
