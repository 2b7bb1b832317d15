"""A transformer's size, read from its config.json: parameters, layers, KV heads, head size and dtype,
and from them the bytes its weights and its KV cache take. The preflight compares them with a GPU's
memory. The formulas cover the decoder-only families of the config (Llama, Mistral, Qwen2, InternLM2:
gated MLP, grouped-query attention); a reward or classification head adds hidden_size x labels."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2}


class ShapeError(ValueError):
    """A config.json without the fields a shape needs; the message names the file and the field."""


@dataclass(frozen=True)
class ModelShape:
    """What sizes a decoder-only model's memory."""

    parameters: int
    layers: int
    kv_heads: int
    head_size: int
    dtype: str  # the checkpoint's torch_dtype ("bfloat16", ...)

    def weight_bytes(self, dtype: str) -> int:
        """The weights in `dtype` ("auto": the checkpoint's own)."""
        return self.parameters * BYTES_PER_PARAMETER[self.dtype if dtype == "auto" else dtype]

    def kv_cache_bytes(self, tokens: int, dtype: str) -> int:
        """A KV cache for `tokens` tokens: keys and values of every layer, kv_heads x head_size each."""
        size = BYTES_PER_PARAMETER[self.dtype if dtype == "auto" else dtype]
        return tokens * self.layers * 2 * self.kv_heads * self.head_size * size


def shape_of(settings: Mapping[str, Any], source: str = "config.json") -> ModelShape:
    """The shape of a model from its config.json settings. Parameters:
    embeddings V x H (twice unless tied), per layer the attention H x (heads + 2 kv_heads) x head_size
    plus the output heads x head_size x H, the gated MLP 3 x H x I, two norms of H; a final norm of H;
    a score head H x num_labels for a classifier (the reward model's v_head: one)."""
    def field(*names: str) -> Any:
        for name in names:
            if settings.get(name) is not None:
                return settings[name]
        raise ShapeError(f"{source} has none of {', '.join(names)}: cannot size the model")

    hidden, layers = int(field("hidden_size")), int(field("num_hidden_layers"))
    heads = int(field("num_attention_heads"))
    kv_heads = int(settings.get("num_key_value_heads") or heads)
    head_size = int(settings.get("head_dim") or hidden // heads)
    vocab, intermediate = int(field("vocab_size")), int(field("intermediate_size"))
    embeddings = vocab * hidden * (1 if settings.get("tie_word_embeddings") else 2)
    architectures = settings.get("architectures") or []
    if any(name.endswith(("ForRewardModel", "ForSequenceClassification")) for name in architectures):
        embeddings = vocab * hidden + hidden * int(settings.get("num_labels") or 1)  # a head, no LM head
    attention = hidden * (heads + 2 * kv_heads) * head_size + heads * head_size * hidden
    per_layer = attention + 3 * hidden * intermediate + 2 * hidden
    dtype = str(settings.get("torch_dtype") or settings.get("dtype") or "float32")
    return ModelShape(embeddings + layers * per_layer + hidden, layers, kv_heads, head_size,
                      dtype if dtype in BYTES_PER_PARAMETER else "float32")


def read_shape(config_file: str | Path) -> ModelShape:
    """The shape from a model's config.json file."""
    path = Path(config_file)
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ShapeError(f"cannot read {path}: {error}") from None
    return shape_of(settings, str(path))
