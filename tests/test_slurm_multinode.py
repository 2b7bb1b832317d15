"""Multi-node training on a real two-node Slurm (the test cluster's two slurmd on localhost, its
partition of both nodes): the QFT rule asks for 2 nodes of one GPU each, the launcher starts one
torchrun per node through srun, and the two ranks rendezvous on the first node and train one model
with DeepSpeed ZeRO-3."""
from __future__ import annotations

import json
import re

import pytest

from conftest import tiny_workflow
from slurm_runs import TWO_NODES, profile_env, run_on_slurm

pytestmark = [pytest.mark.slurm, pytest.mark.training]
MODEL = "results/tiny/train/qft/qwen2-math/model"


def test_qft_trains_one_model_on_two_nodes(slurm_cluster, tiny_models, tmp_path):
    """Slow: a 2-rank ZeRO-3 training as one Slurm job, its ranks started by srun on two nodes (about a
    minute)."""
    workdir = tiny_workflow(tmp_path / "wf", tiny_models)
    (workdir / "two-nodes.yaml").write_text("training: {nodes: 2, deepspeed: zero3}\nqft: {hyper: {max_steps: 6}}\n")
    run_on_slurm(workdir, slurm_cluster, MODEL, "--configfile", "presets/tiny.yaml", "two-nodes.yaml",
                 env=profile_env(partition=TWO_NODES), timeout=900)
    metrics = json.loads((workdir / MODEL / "training_metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["deepspeed"] == "zero3" and metrics["steps"] == 6
    log = (workdir / "results/tiny/logs/qft/qwen2-math.log").read_text()
    assert re.search(r"launch: srun --nodes=2 --ntasks=2 --ntasks-per-node=1 .*--rdzv_endpoint=127\.0\.0\.1:\d+", log)
    ranks = set(re.findall(r"rank (\d) of 2 on Slurm node (node\d)", log))
    assert ranks == {("0", "node1"), ("1", "node2")} or ranks == {("0", "node2"), ("1", "node1")}, log[-3000:]
