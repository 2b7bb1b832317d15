"""The prefetch: what a run needs from the Hugging Face Hub, a clear error when it cannot be
fetched, and every job reading the cache offline."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO, copy_workflow, free_port, run_snakemake
from scalequest.config import load_config_files, validate_config
from scalequest.prefetch import OFFLINE_ENV, hub_items


def test_full_scale_run_needs_seven_models_and_seven_datasets():
    """The synthesis' four models, and the evaluation's base models (DeepSeekMath-7B-base is also the
    difficulty scorer's)."""
    items = hub_items(validate_config(yaml.safe_load((REPO / "config.yaml").read_text())))
    assert [m["repo"] for m in items["models"]] == [
        "Qwen/Qwen2-Math-7B", "Qwen/Qwen2-Math-7B-Instruct", "deepseek-ai/deepseek-math-7b-base",
        "deepseek-ai/deepseek-math-7b-rl", "internlm/internlm2-7b-reward", "meta-llama/Meta-Llama-3-8B",
        "mistralai/Mistral-7B-v0.1"]
    assert {m["repo"]: m["trust_remote_code"] for m in items["models"]}["internlm/internlm2-7b-reward"] is True
    assert {(d["hub"], d["split"]) for d in items["datasets"]} == {
        ("openai/gsm8k", "train"), ("openai/gsm8k", "test"), ("DigitalLearningGmbH/MATH-lighteval", "train"),
        ("DigitalLearningGmbH/MATH-lighteval", "test"), ("HuggingFaceH4/MATH-500", "test"),
        ("qq8933/College_Math_Test", "train"), ("Hothan/OlympiadBench", "train")}


def test_tiny_preset_needs_nothing_from_the_hub():
    items = hub_items(load_config_files(REPO / "config.yaml", REPO / "presets" / "tiny.yaml"))
    assert items == {"models": [], "datasets": []}


def test_unreachable_hub_names_the_model_and_what_to_do(tmp_path):
    """In its own process, as the rule runs it: jobs' environment says offline, the prefetch goes online."""
    code = ("import sys; from scalequest.prefetch import prefetch; "
            "prefetch({'models': [{'repo': 'Qwen/Qwen2-Math-7B-Instruct', 'trust_remote_code': False}], "
            "'datasets': []}, sys.argv[1])")
    env = {**os.environ, **OFFLINE_ENV, "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "prefetch.json")], env=env, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode != 0
    assert re.search(r"(?s)PrefetchError: cannot fetch model Qwen/Qwen2-Math-7B-Instruct .*Connection refused.*"
                     r"network access", result.stderr), result.stderr[-3000:]
    assert f"If Qwen/Qwen2-Math-7B-Instruct is meant as a local folder: there is none at {Path.cwd()}" in result.stderr
    assert not (tmp_path / "prefetch.json").exists()


def test_hub_readers_wait_for_the_prefetch(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    plan = run_snakemake(workdir, "-n", timeout=120).stdout
    assert "rule prefetch:" in plan
    blocks = plan.split("\n\n")
    for rule in ("seed_questions", "generate", "filter", "difficulty_labels", "respond", "reward", "benchmark_index",
                 "sft", "eval_items"):
        block = next(b for b in blocks if f"rule {rule}:" in b)
        assert "results/prefetch.json" in block.split("input:")[1].split("\n")[0], block
