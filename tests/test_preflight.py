"""The preflight's checks (scalequest/preflight.py) against node facts as nvidia-smi and torch report
them: nvidia-smi's query output in its formats, the stand-in nvidia-smi of the test cluster
(tests/bin/nvidia-smi), model sizes from config.json, and each kind of problem with its message.
The preflight as a job on Slurm is in tests/test_slurm.py."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from scalequest.model_shape import ModelShape, shape_of
from scalequest.node_facts import Gpu, NodeFacts, min_driver, parse_gpu_query, query_gpus, torch_cuda
from scalequest.preflight import Need, PreflightError, main, preflight, preflight_job, run_checks

DATA = Path(__file__).with_name("data") / "nvidia_smi"
STAND_IN = Path(__file__).with_name("bin")
REPO = Path(__file__).resolve().parents[1]

# Published shapes (the models' config.json fields) and parameter counts of config.yaml's families.
LLAMA2_7B = dict(architectures=["LlamaForCausalLM"], vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, torch_dtype="float16")
MISTRAL_7B = dict(architectures=["MistralForCausalLM"], vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                  num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, torch_dtype="bfloat16")
QWEN2_7B = dict(architectures=["Qwen2ForCausalLM"], vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4, torch_dtype="bfloat16")


def gpus(count: int = 1, driver: str = "580.95.05", name: str = "NVIDIA H100 80GB HBM3", memory: int = 81559,
         capability: str = "9.0") -> list[Gpu]:
    return [Gpu(index, name, driver, memory, capability) for index in range(count)]


def facts(**kwargs) -> NodeFacts:
    settings = {"node": "gpu-node-7", "gpus": gpus(), "torch_version": "2.13.0+cpu", "torch_cuda": None, **kwargs}
    return NodeFacts(**settings)


def need(models=None, precision=None, gpus_asked: int = 1, cuda: bool = False, env: str = "vllm") -> Need:
    models = models or {}
    precision = precision or {key: ((entry["dtype"], f"models.{key}.dtype"),) for key, entry in models.items()}
    return Need("debug", env, gpus_asked, models, precision, (), cuda)


def local_model(folder: Path, settings: dict) -> dict:
    """A model folder with a config.json of `settings` and a tokenizer file (no weights: the checks read none)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(settings))
    (folder / "tokenizer_config.json").write_text("{}")
    return {"path": str(folder), "engine": "vllm", "dtype": "bfloat16", "max_model_len": 4096, "vllm_args": {}}


def failed(checks) -> dict[str, str]:
    return {check.name: check.message for check in checks if not check.ok}


@pytest.mark.parametrize("name, count, driver, memory, capability", [
    ("h100-noheader-nounits.csv", 8, "550.54.15", 81559, "9.0"),
    ("a100-header-units.csv", 2, "535.183.01", 81920, "8.0"),
    ("v100-noheader-nounits.csv", 2, "535.104.05", 16384, "7.0"),
    ("old-driver-no-compute-cap.csv", 1, "470.182.03", 40536, None),
    ("mig-memory-na.csv", 1, "570.124.06", None, "9.0"),
])
def test_nvidia_smi_query_output_parses_in_each_format(name, count, driver, memory, capability):
    found = parse_gpu_query((DATA / name).read_text())
    assert [gpu.index for gpu in found] == list(range(count))
    assert {(gpu.driver, gpu.memory_mib, gpu.compute_capability) for gpu in found} == {(driver, memory, capability)}


def test_the_stand_in_answers_as_the_real_tool(tmp_path, monkeypatch):
    """tests/bin/nvidia-smi, read through the preflight's own query: the GPUs of CUDA_VISIBLE_DEVICES, and a
    driver older than 510 refusing compute_cap (asked again without it)."""
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert query_gpus() == gpus(2)
    facts_file = tmp_path / "gpus.json"
    facts_file.write_text(json.dumps({"driver": "470.182.03", "compute_cap": "8.0", "count": 1}))
    monkeypatch.setenv("SCALEQUEST_FAKE_GPUS", str(facts_file))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert query_gpus() == [Gpu(0, "NVIDIA H100 80GB HBM3", "470.182.03", 81559, None)]


@pytest.mark.parametrize("settings, published", [(LLAMA2_7B, 6.74e9), (MISTRAL_7B, 7.24e9), (QWEN2_7B, 7.62e9)])
def test_model_shapes_give_the_published_parameter_counts(settings, published):
    assert shape_of(settings).parameters == pytest.approx(published, rel=0.005)


def test_weights_and_kv_cache_bytes_by_hand():
    shape = shape_of(MISTRAL_7B)
    assert shape == ModelShape(shape.parameters, 32, 8, 128, "bfloat16")
    assert shape.weight_bytes("auto") == 2 * shape.parameters and shape.weight_bytes("float32") == 4 * shape.parameters
    assert shape.kv_cache_bytes(4096, "auto") == 4096 * 32 * 2 * 8 * 128 * 2  # 512 MiB
    reward = shape_of({**LLAMA2_7B, "architectures": ["InternLM2ForRewardModel"]})
    assert reward.parameters == shape_of(LLAMA2_7B).parameters - 32000 * 4096 + 4096  # a v_head, no LM head


def test_driver_requirements_by_torch_build():
    assert torch_cuda("2.13.0+cpu", None) == ("13.0", False)
    assert torch_cuda("2.13.0+cu130", "13.0") == ("13.0", True)
    assert min_driver("13.0") == "580.65.06" and min_driver("12.8") == "525.60.13"


def test_an_old_driver_fails_naming_node_driver_minimum_and_route():
    checks = failed(run_checks(facts(gpus=gpus(driver="550.54.15")), need()))
    message = checks["driver"]
    assert "550.54.15" in message and "580.65.06" in message and "gpu-requirements-cu12.txt" in message, message
    older = failed(run_checks(facts(gpus=gpus(driver="470.182.03")), need()))["driver"]
    assert "cu12" not in older and "admins" in older, older
    assert not failed(run_checks(facts(), need()))


def test_cuda_checks_fail_on_a_cpu_build_or_a_failed_init_when_gpus_are_needed():
    assert "CPU build" in failed(run_checks(facts(), need(cuda=True)))["cuda"]
    broken = facts(torch_version="2.13.0+cu130", torch_cuda="13.0", cuda_error="RuntimeError: no CUDA-capable device")
    assert "no CUDA-capable device" in failed(run_checks(broken, need(cuda=True)))["cuda"]
    working = facts(torch_version="2.13.0+cu130", torch_cuda="13.0", cuda_devices=2, gpus=gpus(2))
    assert not failed(run_checks(working, need(cuda=True, gpus_asked=2)))
    assert "asked for 4 GPUs and sees 2" in failed(run_checks(working, need(cuda=True, gpus_asked=4)))["gpus"]


def test_bfloat16_below_compute_capability_8_fails_naming_float16(tmp_path):
    entry = local_model(tmp_path / "m", {**MISTRAL_7B, "num_hidden_layers": 2, "vocab_size": 1000})
    v100 = facts(gpus=gpus(name="Tesla V100-SXM2-32GB", memory=32768, capability="7.0"))
    message = failed(run_checks(v100, need({"solver": entry})))["solver: dtype"]
    assert "dtype: float16" in message and "solver" in message and "7.0" in message, message
    assert not failed(run_checks(v100, need({"solver": {**entry, "dtype": "float16"}})))
    trained = need({"solver": entry}, {"solver": (("bfloat16", "qft.hyper.bf16"),)}, env="train")
    assert "`qft.hyper.bf16: false`" in failed(run_checks(v100, trained))["solver: dtype"]


def test_a_model_larger_than_the_gpu_fails_naming_it_and_both_sizes(tmp_path):
    """A Llama-2-7B shape in float16 on a 16 GB V100: 12.6 GiB of weights and a 2 GiB KV cache of 4,096 tokens
    (32 KV heads) against 90% of 16 GiB."""
    entry = local_model(tmp_path / "m", LLAMA2_7B)
    v100 = facts(gpus=gpus(name="Tesla V100-SXM2-16GB", memory=16384, capability="7.0"))
    message = failed(run_checks(v100, need({"reward": {**entry, "dtype": "float16"}})))["reward: memory"]
    assert re.search(r"model reward needs 14\.\d GiB per GPU \(12\.\d GiB of float16 weights", message), message
    assert "GPU offers 14.4 GiB" in message and "tensor_parallel_size" in message, message
    split = {**entry, "dtype": "float16", "vllm_args": {"tensor_parallel_size": 2}}
    two = facts(gpus=gpus(2, memory=16384, capability="7.0"))
    assert not failed(run_checks(two, need({"reward": split}, gpus_asked=2)))
    alone = failed(run_checks(facts(gpus=gpus(1, memory=16384)), need({"reward": split})))
    assert "spans 2 GPUs" in alone["reward: parallel"]


def test_a_model_missing_from_the_offline_cache_fails_until_the_cache_has_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    entry = {"path": "twins/tiny-llama", "engine": "vllm", "dtype": "float32", "max_model_len": 256, "vllm_args": {}}
    message = failed(run_checks(facts(), need({"generator": entry})))["generator: files"]
    assert "model generator (twins/tiny-llama)" in message and "not in the offline cache" in message, message
    assert "prefetch" in message
    # What the prefetch leaves: the hub cache's layout, a snapshot named by refs/main.
    repo = tmp_path / "hf" / "hub" / "models--twins--tiny-llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    local_model(repo / "snapshots" / ("0" * 40), {**LLAMA2_7B, "num_hidden_layers": 1, "torch_dtype": "float32"})
    assert not failed(run_checks(facts(), need({"generator": entry})))


def test_a_failed_preflight_keeps_its_report_and_raises_every_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    facts_file = tmp_path / "gpus.json"
    facts_file.write_text(json.dumps({"driver": "550.54.15"}))
    monkeypatch.setenv("SCALEQUEST_FAKE_GPUS", str(facts_file))
    config = {"models": {}, "preflight": {"cuda": False}}
    out = tmp_path / "preflight" / "debug" / "vllm.json"
    with pytest.raises(PreflightError, match="550.54.15"):
        preflight_job(config, [], "debug", "vllm", 1, [], out)
    assert not out.exists() and json.loads(out.with_suffix(".failed.json").read_text())["problems"]
    facts_file.write_text(json.dumps({"driver": "580.95.05"}))
    assert preflight_job(config, [], "debug", "vllm", 1, [], out)["problems"] == []
    assert out.is_file() and not out.with_suffix(".failed.json").exists()


def test_by_hand_on_this_node_with_a_config(tmp_path, monkeypatch, capsys):
    """`python -m scalequest.preflight --configfile config.yaml presets/tiny.yaml`, as the README shows:
    the tiny preset's models are built here, so it checks the node and finds them (or says they are missing)."""
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(REPO)
    code = main(["--configfile", "config.yaml", "presets/tiny.yaml", "--json", str(tmp_path / "report.json")])
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert printed.startswith("preflight of partition") and "driver 580.95.05" in printed, printed
    assert code == (1 if report["problems"] else 0)
    assert all("tiny-lm" in problem or "tiny-reward" in problem for problem in report["problems"]), report["problems"]
    assert report["facts"]["gpus"] and report["facts"]["torch_version"]


def test_a_report_lists_every_check():
    report = preflight(need(), facts(gpus=gpus(driver="550.54.15")))
    assert report["node"] == "gpu-node-7" and [check["name"] for check in report["checks"]] == ["driver", "gpus"]
    assert report["problems"] == [f"node gpu-node-7: {report['checks'][0]['message']}"]
