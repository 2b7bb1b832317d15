"""Which rules run on GPUs and how many GPUs one of their jobs takes: declared once, here. The rules
ask for their jobs' GPUs from it (resource `gpu`), the Slurm profile gives its GPU rules the GPU
partition, CPUs and memory per GPU and these time limits, the plan charges each job's GPUs, and the
calibration measures the same stages."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

# The environments that hold a GPU stack: a rule that runs in one of them must be declared below.
GPU_ENVS = ("vllm.yaml", "train.yaml")
PARALLEL_ARGS = ("tensor_parallel_size", "pipeline_parallel_size")  # their product: GPUs one vLLM engine spans

ModelKeys = Callable[[Mapping[str, Any], Optional[str]], list[str]]


class GpuConfigError(ValueError):
    """A model's GPU settings contradict each other; the message names the key."""


def _generator_model(config: Mapping[str, Any], gen: str | None) -> list[str]:
    """A generator's own model: trained models keep their base model's engine settings."""
    generators = config["generators"]
    names = [gen] if gen else sorted(generators)
    return [generators[name]["model"] for name in names if "model" in generators[name]]


def _solvability_judge(config: Mapping[str, Any], gen: str | None) -> list[str]:
    solvability = config["filter"]["solvability"]
    return [solvability["model"]] if solvability["enabled"] else []


def _optimizer(config: Mapping[str, Any], gen: str | None) -> list[str]:
    """The QPO optimizer when it is a local model, and the judge of its rewrites when that is on."""
    optimizer = config["qpo"]["optimizer"]["model"]
    local = [optimizer] if config["models"][optimizer]["engine"] != "openai" else []
    return local + ([config["filter"]["solvability"]["model"]] if config["qpo"]["judge"] else [])


@dataclass(frozen=True)
class EngineRule:
    """A rule whose jobs run model engines (vLLM or transformers)."""

    minutes: int  # first attempt's time limit: a 10,000-question shard of a 7B model on one A100/H100, with room
    models: ModelKeys  # the model keys one job loads (for a generator's job when `gen` is given)


ENGINE_RULES: dict[str, EngineRule] = {
    "generate": EngineRule(60, _generator_model),
    "filter": EngineRule(120, _solvability_judge),
    "difficulty_labels": EngineRule(120, lambda config, gen: [config["difficulty"]["labels"]["solver"]]),
    "difficulty": EngineRule(30, lambda config, gen: [config["difficulty"]["scorer"]["model"]]),
    "respond": EngineRule(180, lambda config, gen: [config["respond"]["model"]]),
    "reward": EngineRule(120, lambda config, gen: [config["reward"]["model"]]),
    "qpo_sample": EngineRule(60, _generator_model),
    "qpo_rewrite": EngineRule(120, _optimizer),
}
# Training rules take whole GPU nodes (DeepSpeed ZeRO-3 over every GPU of `training.nodes` nodes).
TRAINING_RULES = ("qft", "qpo_train", "difficulty_train")


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
    return max((model_gpus(config["models"][key]) for key in ENGINE_RULES[rule].models(config, gen)), default=0)


def check_model_gpus(config: Mapping[str, Any]) -> None:
    """Raise GpuConfigError, naming the model key, where a model's GPU settings contradict each other."""
    for key, entry in config["models"].items():
        try:
            model_gpus(entry)
        except GpuConfigError as error:
            raise GpuConfigError(f"invalid config at 'models.{key}.gpus': {error}") from None


def undeclared_gpu_rules(envs: Mapping[str, str | None]) -> list[str]:
    """The rules that run in a GPU environment ({rule: its conda env file}) without being declared
    here: their jobs would get no GPU."""
    declared = set(ENGINE_RULES) | set(TRAINING_RULES)
    return sorted(rule for rule, env in envs.items()
                  if env and env.rsplit("/", 1)[-1] in GPU_ENVS and rule not in declared)
