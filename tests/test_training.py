"""QFT and QPO: seed questions, the optimizer's reply format, preference pairs, and real training
runs on the tiny model through the launcher (1 process, and 2 ranks with DeepSpeed ZeRO-3)."""
from __future__ import annotations

import json
import os
import random
import signal
import sys
from dataclasses import replace

import pytest

from conftest import SHARED_DATA
from scalequest.digests import digest
from scalequest.engines import Sampling, open_generator
from scalequest.jsonl import InputFileError
from scalequest.models import ModelSpec
from scalequest.prompts import PROMPT_STYLES, REWRITE_PROMPTS
from scalequest.records import PAIRS, to_table, write_shard
from scalequest.rewrite import extract_rewrite
from scalequest.seeds import collect_seed_questions, read_seeds
from scalequest.stages.qpo import rewrite_drop_reason
from scalequest.stats import ShardStats, stats_path, write_stats
from scalequest.training.checkpoints import MARKER, checkpoint_step, checkpoints_dir, choose_checkpoint, resume_line
from scalequest.training.enough import TooFewPairsError, check_enough_pairs
from scalequest.training.job import TrainJob
from scalequest.training.launcher import Launch, TrainingError, launch_command, train
from training_runs import complete_checkpoints, start_training, wait_until, weight_difference

SEED_SOURCES = [{"name": "gsm8k", "path": str(SHARED_DATA / "gsm8k_train.jsonl"), "field": "question"},
                {"name": "math", "path": str(SHARED_DATA / "math_train.jsonl"), "field": "problem"}]
QFT_HYPER = dict(epochs=1, max_steps=-1, learning_rate=1e-3, lr_scheduler="cosine", warmup=0.05, max_length=256,
                 per_device_batch_size=8, gradient_accumulation_steps=1, bf16=True, eval_fraction=0.1,
                 logging_steps=10, packing=False)
DPO_HYPER = dict(epochs=3, max_steps=-1, learning_rate=5e-4, lr_scheduler="cosine", warmup=2, max_length=128,
                 per_device_batch_size=8, gradient_accumulation_steps=1, bf16=True, eval_fraction=0.2,
                 logging_steps=10, beta=0.1, loss_type="sigmoid")


@pytest.fixture(autouse=True)
def cpu_training_env(monkeypatch, tmp_path_factory):
    # The DeepSpeed CPU comm op is compiled once per session into this folder.
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", os.environ.get("TORCH_EXTENSIONS_DIR",
                                                              str(tmp_path_factory.getbasetemp() / "torch_extensions")))


# --- seed questions -----------------------------------------------------------------------------

def test_seed_questions_from_gsm8k_and_math_train(tmp_path):
    out = tmp_path / "seeds.jsonl"
    funnel = collect_seed_questions(sources=SEED_SOURCES, max_questions=15000, seed=1, out=out,
                                    stats_out=tmp_path / "seeds.stats.json")
    rows = read_seeds(out)
    assert funnel.total == 7473 + 7500 and funnel.kept == len(rows)
    assert funnel.total == funnel.kept + sum(funnel.dropped.values())
    assert {row["source"] for row in rows} == {"gsm8k", "math"}
    assert 14800 < len(rows) <= 14973  # the paper's "15K"; the few exact duplicates are dropped


def test_seed_questions_cap_is_a_seeded_sample(tmp_path):
    def run(seed):
        out = tmp_path / f"s{seed}.jsonl"
        funnel = collect_seed_questions(sources=SEED_SOURCES, max_questions=500, seed=seed, out=out,
                                        stats_out=tmp_path / f"s{seed}.stats.json")
        return funnel, out.read_text()

    funnel, first = run(3)
    assert funnel.kept == 500 and funnel.dropped["over_cap"] > 14000
    assert run(3)[1] == first and run(4)[1] != first


def test_seed_questions_name_a_bad_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is 1+1?"}\n{"question": 3}\n')
    with pytest.raises(InputFileError, match=r"bad.jsonl:2: 'question' is int"):
        collect_seed_questions(sources=[{"name": "bad", "path": str(bad), "field": "question"}], max_questions=10,
                               seed=0, out=tmp_path / "o.jsonl", stats_out=tmp_path / "o.json")


# --- the optimizer's replies and the pairs -------------------------------------------------------

@pytest.mark.parametrize("reply, expected", [
    ("CREATED QUESTION: a?\nVERIFICATION AND MODIFICATION: ok\nFINAL QUESTION: What is 2+3?", "What is 2+3?"),
    ("**FINAL QUESTION:** What is 5 * 7?", "What is 5 * 7?"),
    ("### FINAL QUESTION\n\nHow many eggs are left?", "How many eggs are left?"),
    ("Final Question: \"Find x if 2x = 8.\"", "Find x if 2x = 8."),
    ("FINAL QUESTION: draft\n...\n**FINAL QUESTION**: the last one counts", "the last one counts"),
    ("I could not improve it.", None),
    ("FINAL QUESTION:   **", ""),
])
def test_solvability_rewrite_extraction(reply, expected):
    assert extract_rewrite(reply, REWRITE_PROMPTS["solvability"]) == expected


def test_difficulty_rewrite_extraction():
    reply = ("Step 1 #Methods List#: more steps\nStep 3 #Rewritten Problem#: x\n"
             "**Step 4 #Finally Rewritten Problem#:**\nHarder?")
    assert extract_rewrite(reply, REWRITE_PROMPTS["difficulty"]) == "Harder?"


def test_rewrite_drop_reasons():
    assert rewrite_drop_reason(None, "q") == "no_marker"
    assert rewrite_drop_reason("", "q") == "empty_rewrite"
    assert rewrite_drop_reason("  What is 2+2?", "what is 2+2") == "unchanged"
    assert rewrite_drop_reason("What is 2+3?", "What is 2+2?") is None


def write_pairs(path, pairs, dropped=None):
    rows = [{"id": f"g-00000-{i}", "generator": "g", "rejected": r, "chosen": c, "optimizer_model": "opt",
             "optimizer_reply": f"FINAL QUESTION: {c}"} for i, (c, r) in enumerate(pairs)]
    write_shard(to_table(rows, PAIRS), PAIRS, path)
    stats = ShardStats("qpo_rewrite", "g", "00000", 0, {"optimizer": "opt"})
    stats.questions.keep(len(rows))
    for reason, count in (dropped or {}).items():
        stats.questions.drop(reason, count)
    write_stats(stats_path(path), stats)


def test_too_few_pairs_says_how_many_and_why(tmp_path):
    path = tmp_path / "pairs.parquet"
    write_pairs(path, [("What is 2+3?", "What is 2+2?")], {"no_marker": 7, "unchanged": 2})
    assert check_enough_pairs(path, 1) == 1
    with pytest.raises(TooFewPairsError, match=r"1 valid preference pairs from 10 sampled questions.*"
                                               r"no_marker: 7, unchanged: 2"):
        check_enough_pairs(path, 5)


# --- the launcher --------------------------------------------------------------------------------

def job(tmp_path, **overrides) -> TrainJob:
    fields = dict(kind="qft", base_model="m", data="d", output_dir=str(tmp_path), prompt_style="qwen2-math",
                  hyper=QFT_HYPER, seed=0)
    return TrainJob(**{**fields, **overrides})


def test_launch_commands(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert launch_command(Launch(processes_per_node=1), job(tmp_path), "j.json") == [
        sys.executable, "-m", "scalequest.training.worker", "j.json"]
    deepspeed_one = launch_command(Launch(processes_per_node=1), job(tmp_path, deepspeed="zero3"), "j.json")
    assert deepspeed_one[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    assert "--nproc_per_node=4" in launch_command(Launch(processes_per_node=4), job(tmp_path), "j.json")
    with pytest.raises(TrainingError, match="not a Slurm job"):
        launch_command(Launch(nodes=2), job(tmp_path), "j.json")


# --- real training on the tiny model -------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    collect_seed_questions(sources=SEED_SOURCES, max_questions=600, seed=2, out=folder / "seeds.jsonl",
                           stats_out=folder / "seeds.stats.json")
    return folder / "seeds.jsonl"


@pytest.fixture(scope="module")
def qft_model(tiny_models, seed_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("qft") / "model"
    metrics = train(TrainJob(kind="qft", base_model=str(tiny_models / "tiny-lm"), data=str(seed_file), output_dir="",
                             prompt_style="qwen2-math", hyper=QFT_HYPER, seed=5), out, Launch(processes_per_node=1))
    return out, metrics


@pytest.mark.training
def test_qft_lowers_held_out_question_loss(qft_model):
    _, metrics = qft_model
    assert metrics["held_out_questions"] == 60 and metrics["world_size"] == 1
    assert metrics["held_out_loss_after"] < metrics["held_out_loss_before"] - 0.5


@pytest.mark.training
def test_qft_samples_are_questions(qft_model):
    path, _ = qft_model
    style = PROMPT_STYLES["qwen2-math"]
    spec = ModelSpec(key="qft", path=str(path), engine="hf", dtype="float32", max_model_len=512, batch_size=16)
    with open_generator(spec) as engine:
        samples = [r[0] for r in engine.generate([style.user_prefix] * 16,
                                                  Sampling(temperature=1.0, top_p=0.99, max_tokens=256,
                                                           stop=style.stop, seed=3))]
    finished = [s for s in samples if s.finished]
    # A question ends its user turn with the end-of-turn token (finished), and is not empty.
    assert len(finished) >= 12, [s.text for s in samples]
    assert all(s.text.strip() for s in finished)


def signal_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """(chosen, rejected): a two-step question preferred over its one-step original."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        name, a, b, c = rng.choice(["Tom", "Anna", "Ravi"]), rng.randint(2, 50), rng.randint(2, 30), rng.randint(2, 9)
        raw = f"{name} has {a} apples and buys {b} more. How many apples now?"
        pairs.append((f"{name} has {a} apples, buys {b} more, then gives {c} to each of 2 friends. "
                      "How many apples are left?", raw))
    return pairs


@pytest.mark.training
def test_dpo_raises_held_out_reward_accuracy(qft_model, tmp_path):
    qft_path, _ = qft_model
    pairs = tmp_path / "pairs.parquet"
    write_pairs(pairs, signal_pairs(60, 1))
    metrics = train(TrainJob(kind="qpo", base_model=str(qft_path), data=str(pairs), output_dir="",
                             prompt_style="qwen2-math", hyper=DPO_HYPER, seed=7), tmp_path / "qpo",
                    Launch(processes_per_node=1))
    assert metrics["held_out_pairs"] == 12
    assert metrics["held_out_reward_accuracy_after"] > 0.5
    assert metrics["held_out_reward_accuracy_after"] > metrics["held_out_reward_accuracy_before"]


@pytest.mark.training
@pytest.mark.vllm
def test_two_ranks_zero3_train_and_the_model_loads_in_transformers_and_vllm(tiny_models, seed_file, tmp_path):
    """QFT then DPO, each on 2 ranks with ZeRO-3; the saved model answers the same in both engines.

    Slow: two 2-rank trainings and a vLLM start (about a minute)."""
    qft_out, dpo_out = tmp_path / "qft", tmp_path / "qpo"
    two = Launch(processes_per_node=2)
    qft = train(TrainJob(kind="qft", base_model=str(tiny_models / "tiny-lm"), data=str(seed_file), output_dir="",
                         prompt_style="deepseek-math", hyper={**QFT_HYPER, "max_steps": 12}, seed=5,
                         deepspeed="zero3"), qft_out, two)
    assert qft["world_size"] == 2 and qft["deepspeed"] == "zero3"
    assert qft["held_out_loss_after"] < qft["held_out_loss_before"]
    pairs = tmp_path / "pairs.parquet"
    write_pairs(pairs, signal_pairs(40, 2))
    dpo = train(TrainJob(kind="qpo", base_model=str(qft_out), data=str(pairs), output_dir="",
                         prompt_style="deepseek-math", hyper={**DPO_HYPER, "epochs": 1}, seed=7,
                         deepspeed="zero3"), dpo_out, two)
    assert dpo["world_size"] == 2 and dpo["steps"] >= 1
    style = PROMPT_STYLES["deepseek-math"]
    sampling = Sampling(temperature=0.0, max_tokens=24, stop=style.stop, seed=1)
    texts = {}
    for engine_name in ("hf", "vllm"):
        spec = ModelSpec(key="qpo", path=str(dpo_out), engine=engine_name, dtype="float32", max_model_len=512,
                         vllm_args={"enforce_eager": True})
        with open_generator(spec) as engine:
            texts[engine_name] = engine.generate([style.user_prefix], sampling)[0][0].text
    assert texts["hf"] and texts["hf"] == texts["vllm"]  # greedy: both engines read the same weights


# --- checkpoints and resume ----------------------------------------------------------------------

def test_a_checkpoint_of_other_settings_is_set_aside_and_training_starts_at_step_0(tmp_path):
    """Another learning rate: the checkpoint is moved aside, never mixed in, and the log says which setting
    differs; one without its record (cut short) is removed; the last complete one of the same settings wins."""
    folder, settings = tmp_path / "model.checkpoints", {"hyper.learning_rate": digest(1e-3), "seed": digest(5)}
    for step, made_with in ((10, settings), (20, {**settings, "hyper.learning_rate": digest(2e-3)}), (30, None)):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if made_with:
            (folder / f"checkpoint-{step}" / MARKER).write_text(json.dumps({"settings": made_with, "time": 0}))
    chosen, lines = choose_checkpoint(folder, settings)
    assert chosen == folder / "checkpoint-10"
    assert lines == [f"{folder}/checkpoint-20: made with other settings (hyper.learning_rate differ), set aside in "
                     f"{folder}/set-aside/checkpoint-20-0",
                     f"{folder}/checkpoint-30: cut short (no record of every rank's save), removed"]
    assert sorted(path.name for path in folder.iterdir()) == ["checkpoint-10", "set-aside"]
    (folder / "checkpoint-10" / MARKER).write_text(json.dumps({"settings": {**settings, "seed": digest(6)}, "time": 0}))
    chosen, lines = choose_checkpoint(folder, settings)
    assert chosen is None and "(seed differ)" in lines[0]
    assert resume_line("qft", "m", chosen) == "training qft m: from step 0 (no checkpoint to resume)"


@pytest.mark.training
def test_a_killed_qft_resumes_from_its_checkpoint_to_the_same_model(qft_model, tiny_models, seed_file, tmp_path):
    """SIGKILL after a few checkpoints (one a step), the last of them as a kill during its write leaves it
    (no record): the next run resumes from the one before, says so, and ends with the uninterrupted run's
    weights (qft_model: no checkpoint saved)."""
    baseline, metrics = qft_model
    out = tmp_path / "model"
    job = TrainJob(kind="qft", base_model=str(tiny_models / "tiny-lm"), data=str(seed_file), output_dir="",
                   prompt_style="qwen2-math", hyper=QFT_HYPER, seed=5, checkpoint_seconds=0)
    first = start_training(job, 1, out, tmp_path / "first.log")
    try:
        wait_until(lambda: len(complete_checkpoints(out)) >= 2, first, tmp_path / "first.log")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not out.exists()
    saved = complete_checkpoints(out)
    (saved[-1] / MARKER).unlink()
    second = start_training(replace(job, checkpoint_seconds=3600), 1, out, tmp_path / "second.log")
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-4000:]
    log = (tmp_path / "second.log").read_text()
    assert f"{saved[-1]}: cut short (no record of every rank's save), removed" in log
    assert f"resuming qft {out}: step {checkpoint_step(saved[-2])} of {metrics['steps']} (checkpoint of " in log
    assert not checkpoints_dir(out).exists()
    difference = weight_difference(out, baseline)
    print(f"\nresumed QFT vs uninterrupted: largest weight difference {difference}")
    assert difference <= 1e-6
