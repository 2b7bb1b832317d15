"""How many GPUs one job of an engine rule (scalequest/registry.py) takes, from the settings of the
models it loads. The rules ask Slurm for it (resource `gpu`) and the plan charges it."""
from __future__ import annotations

from typing import Any, Mapping

from .registry import ENGINE, JOBS

PARALLEL_ARGS = ("tensor_parallel_size", "pipeline_parallel_size")  # their product: GPUs one vLLM engine spans


class GpuConfigError(ValueError):
    """A model's GPU settings contradict each other; the message names the key."""


def model_gpus(entry: Mapping[str, Any]) -> int:
    """GPUs one engine of a model takes: `gpus` when set; else, for vLLM, tensor_parallel_size x
    pipeline_parallel_size of its vllm_args; 1 for transformers; none for an API."""
    if entry["engine"] == "openai":
        return 0
    parallel = 1
    for arg in PARALLEL_ARGS:
        parallel *= int(entry.get("vllm_args", {}).get(arg, 1))
    if entry["engine"] == "vllm":
        if entry.get("gpus") not in (None, parallel):
            raise GpuConfigError(f"gpus is {entry['gpus']} but vllm_args asks for {parallel} "
                                 f"({' x '.join(PARALLEL_ARGS)}); leave gpus out for vllm models")
        return parallel
    return entry.get("gpus") or 1


def job_gpus(config: Mapping[str, Any], rule: str, gen: str | None = None) -> int:
    """GPUs one job of an engine rule takes: the most any model it loads needs (0: it loads none)."""
    job = JOBS[rule]
    if job.family != ENGINE:
        raise KeyError(f"rule {rule} is not an engine rule in scalequest/registry.py")
    return max((model_gpus(config["models"][key]) for key in job.models(config, gen)), default=0)


def check_model_gpus(config: Mapping[str, Any]) -> None:
    """Raise GpuConfigError, naming the model key, where a model's GPU settings contradict each other."""
    for key, entry in config["models"].items():
        try:
            model_gpus(entry)
        except GpuConfigError as error:
            raise GpuConfigError(f"invalid config at 'models.{key}.gpus': {error}") from None
