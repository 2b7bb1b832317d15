"""Model entries of the config as typed specs, and where a model path points: a hub id or a local folder."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# A folder the Hugging Face loaders read a model from has its config and a tokenizer.
MODEL_CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def is_local_model_path(path: str) -> bool:
    """Whether a model path names a folder rather than a hub id (`name` or `owner/name`): an
    existing folder, or a path no hub id looks like (absolute, starting with . or ~, or with more
    than one /)."""
    return Path(path).exists() or os.path.isabs(path) or path.startswith((".", "~")) or path.count("/") > 1


def is_hub_model(entry: Mapping[str, Any]) -> bool:
    """A model the engines load from the hub: not an API model, not built here, not a local folder."""
    return entry["engine"] != "openai" and not entry.get("build") and not is_local_model_path(entry["path"])


def local_folder_problem(path: str) -> str | None:
    """What keeps a local model path from loading (no folder, no config, no tokenizer), or None."""
    folder = Path(path)
    if not folder.exists():
        expanded = folder.expanduser()
        if expanded != folder and expanded.exists():  # the loaders do not expand ~
            return f"{path} does not exist as written: write it in full, {expanded}"
        return f"the model folder {path} does not exist (a path, not a hub id `owner/name`); fix the path"
    if not folder.is_dir():
        return f"{path} is a file; give the folder a model was saved to (save_pretrained)"
    if not (folder / MODEL_CONFIG_FILE).is_file():
        return (f"{path} has no {MODEL_CONFIG_FILE}: point the path at the folder a model was saved to "
                f"(save_pretrained writes {MODEL_CONFIG_FILE})")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return (f"{path} has no tokenizer files ({', '.join(TOKENIZER_FILES[:-1])} or {TOKENIZER_FILES[-1]}): "
                "save the tokenizer into it too (tokenizer.save_pretrained)")
    return None


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
