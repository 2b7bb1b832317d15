"""Model entries of the config as typed specs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model: where from, through which engine, with which options."""

    key: str
    path: str
    engine: str = "vllm"
    dtype: str = "auto"
    max_model_len: int = 4096
    trust_remote_code: bool = False
    batch_size: int = 16
    gpus: int = 1  # hf: more than 1 spreads the layers over the visible GPUs
    vllm_args: Mapping[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 6
    timeout: float = 45.0
    label: str | None = None  # the identity recorded in outputs, when the path is not one (a trained model)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], key: str) -> "ModelSpec":
        return cls.from_entry(key, config["models"][key])

    @classmethod
    def from_entry(cls, key: str, entry: Mapping[str, Any]) -> "ModelSpec":
        """From one `models.<key>` entry of the validated config."""
        return cls(
            key=key,
            path=entry["path"],
            engine=entry.get("engine", "vllm"),
            dtype=entry.get("dtype", "auto"),
            max_model_len=entry.get("max_model_len", 4096),
            # Off unless this model's entry turns it on: remote code runs with the job's rights.
            trust_remote_code=bool(entry.get("trust_remote_code", False)),
            batch_size=entry.get("batch_size", 16),
            gpus=entry.get("gpus") or 1,
            vllm_args=dict(entry.get("vllm_args") or {}),
            base_url=entry.get("base_url"),
            api_key_env=entry.get("api_key_env", "OPENAI_API_KEY"),
            concurrency=entry.get("concurrency", 8),
            max_retries=entry.get("max_retries", 6),
            timeout=float(entry.get("timeout", 45.0)),
            label=entry.get("label"),
        )

    def describe(self) -> str:
        """The model's identity as recorded in shards and stats (never a key or credential)."""
        if self.label:
            return self.label
        if self.engine == "openai":
            return f"{self.path} @ {self.base_url}"
        return self.path
