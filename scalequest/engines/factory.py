"""Choose the engine a model's config entry asks for."""
from __future__ import annotations

from ..models import ModelSpec, check_weights
from .base import ChatEngine, EmbeddingEngine, GenerationEngine, ScoringEngine


def open_generator(spec: ModelSpec, seed: int = 0) -> GenerationEngine:
    """A generation engine for `spec` (caller closes it, or uses it as a context manager)."""
    check_weights(spec)
    if spec.engine == "hf":
        from .hf import HFGenerator

        return HFGenerator(spec)
    if spec.engine == "vllm":
        from .vllm_engine import VLLMGenerator

        return VLLMGenerator(spec, seed)
    raise ValueError(f"model '{spec.key}': unknown engine '{spec.engine}'")


def open_scorer(spec: ModelSpec, seed: int = 0) -> ScoringEngine:
    """A scoring engine (reward model, regression head) for `spec`."""
    check_weights(spec)
    if spec.engine == "hf":
        from .hf import HFScorer

        return HFScorer(spec)
    if spec.engine == "vllm":
        from .vllm_engine import VLLMScorer

        return VLLMScorer(spec, seed)
    raise ValueError(f"model '{spec.key}': unknown engine '{spec.engine}'")


def open_embedder(spec: ModelSpec, seed: int = 0) -> EmbeddingEngine:
    """An embedding engine (an encoder, or a language model's pooled states) for `spec`."""
    check_weights(spec)
    if spec.engine == "hf":
        from .hf import HFEmbedder

        return HFEmbedder(spec)
    if spec.engine == "vllm":
        from .vllm_engine import VLLMEmbedder

        return VLLMEmbedder(spec, seed)
    raise ValueError(f"model '{spec.key}': the {spec.engine} engine does not embed (use hf or vllm)")


def open_chat(spec: ModelSpec, seed: int = 0, cache_dir: str | None = None) -> ChatEngine:
    """A chat engine: an OpenAI-compatible endpoint (answers cached under `cache_dir`), or a
    local model through its generation engine and chat template."""
    if spec.engine == "openai":
        from .openai_engine import OpenAIChatEngine

        return OpenAIChatEngine(spec, cache_dir=cache_dir)
    return open_generator(spec, seed)
