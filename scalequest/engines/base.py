"""The engine interface. Tokenization lives here, so both engines see the same token ids,
truncate the same way and agree on which prompts are too long."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Mapping, Sequence

from ..models import ModelSpec, model_config
from ..prompts import PLAIN_CHAT_TEMPLATE


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of one generation call; prompt i of the call uses seed `seed + i` (the
    hf engine: the batch of prompts [b, b + batch_size) uses `seed + b`), whether or not the prompts
    before it fit the model: a prompt's seed is its index, so a shard split into chunks whose starts
    are multiples of the batch size samples what it samples whole."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def from_config(cls, sampling: dict[str, Any], *, n: int = 1, stop: Sequence[str] = (),
                    seed: int = 0) -> "Sampling":
        return cls(n=n, temperature=sampling["temperature"], top_p=sampling["top_p"],
                   max_tokens=sampling["max_tokens"], stop=tuple(stop), seed=seed)


@dataclass(frozen=True)
class Completion:
    """One sampled continuation. `finished` is False when it hit the token limit."""

    text: str
    tokens: int
    finished: bool


class Engine(ABC):  # noqa: B024 -- no abstract methods of its own: the shared close()/with-block base of every engine
    """One engine per job, created once; close() (or a with-block) frees the model."""

    def close(self) -> None:  # noqa: B027 -- an intentional no-op default; engines that hold resources override it
        """Release the model or connection; engines free their resources here."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _TokenizingEngine(Engine):
    """Shared tokenizer handling; subclasses set `self.tokenizer` and `self.spec`."""

    spec: ModelSpec
    tokenizer: Any

    def render_chat(self, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
        """Messages → the model's own chat text (prompts.PLAIN_CHAT_TEMPLATE for a model without one)."""
        template = None if self.tokenizer.chat_template else PLAIN_CHAT_TEMPLATE
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                  chat_template=template)

    def encode(self, text: str) -> list[int]:
        """Token ids as the model expects them: special tokens (BOS) added unless a chat
        template already wrote the BOS into the text."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])


class ChatEngine(Engine):
    """Conversations in, one assistant reply each out: the QPO question optimizer's interface,
    served by a local model or by an OpenAI-compatible endpoint."""

    @abstractmethod
    def chat(self, conversations: Sequence[list[dict[str, str]]], sampling: Sampling) -> list[Completion | None]:
        """One reply per conversation (sampling.n is ignored); None where the conversation does
        not fit the model's context."""


class GenerationEngine(_TokenizingEngine, ChatEngine):
    """Prompts in, n completions per prompt out."""

    def split_stops(self, stops: Sequence[str]) -> tuple[list[int], list[str]]:
        """Stops that are single special tokens become token ids (they never appear in decoded
        text); the rest stay strings. The tokenizer's EOS always stops."""
        added = self.tokenizer.get_added_vocab()
        ids = {self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set()
        strings = []
        for stop in stops:
            if stop in added:
                ids.add(added[stop])
            else:
                strings.append(stop)
        return sorted(ids), strings

    def fits(self, prompt_ids: Sequence[int]) -> bool:
        """Whether a prompt leaves room for at least one generated token."""
        return len(prompt_ids) < self.spec.max_model_len

    @abstractmethod
    def generate_ids(self, prompts: Sequence[list[int]], sampling: Sampling,
                     positions: Sequence[int]) -> list[list[Completion]]:
        """n completions for each tokenized prompt (every prompt must fit); `positions` are the
        prompts' indices in the call, which decide their seeds."""

    def generate(self, prompts: Sequence[str], sampling: Sampling) -> list[list[Completion] | None]:
        """n completions per prompt; None for a prompt too long for the model's context."""
        encoded = [self.encode(p) for p in prompts]
        fitting = [i for i, ids in enumerate(encoded) if self.fits(ids)]
        results: list[list[Completion] | None] = [None] * len(prompts)
        if fitting:
            for index, completions in zip(fitting, self.generate_ids([encoded[i] for i in fitting], sampling, fitting)):
                results[index] = completions
        return results

    def chat(self, conversations: Sequence[list[dict[str, str]]], sampling: Sampling) -> list[Completion | None]:
        prompts = [self.render_chat(c, add_generation_prompt=True) for c in conversations]
        results = self.generate(prompts, replace(sampling, n=1))
        return [None if result is None else result[0] for result in results]


def reward_suffix(config: Mapping[str, Any]) -> tuple[int, ...]:
    """The ids a reward model's own scoring code appends to every input before it reads the score at the
    last token, from its config.json: `reward_token_id` (internlm2-7b-reward's token 92527), else none."""
    token = config.get("reward_token_id")
    return () if token is None else (int(token),)


def scoring_input(ids: Sequence[int], max_len: int, suffix: Sequence[int]) -> tuple[list[int], bool]:
    """`ids` cut to `max_len` with `suffix` whole at the end (the score is read there), and whether they were cut."""
    room = max_len - len(suffix)
    return list(ids[:room]) + list(suffix), len(ids) > room


class ScoringEngine(_TokenizingEngine):
    """Conversations in, one float each out (a reward or a regression score)."""

    @cached_property
    def suffix_ids(self) -> tuple[int, ...]:
        """What the model's own code appends to an input before scoring it (reward_suffix)."""
        return reward_suffix(model_config(self.spec.path))

    @abstractmethod
    def score_ids(self, inputs: Sequence[list[int]]) -> list[float]:
        """One score per tokenized input."""

    def score(self, conversations: Sequence[list[dict[str, str]]]) -> tuple[list[float], int]:
        """Scores of chat-rendered conversations (a reward model), and how many inputs were cut to
        the model's context length."""
        return self.score_texts([self.render_chat(c, add_generation_prompt=False) for c in conversations])

    def score_texts(self, texts: Sequence[str]) -> tuple[list[float], int]:
        """Scores of plain texts (a regression head on questions), and how many were cut to the
        model's context length; the model's suffix_ids end every input, so the score is read there."""
        inputs, truncated = [], 0
        for text in texts:
            ids, cut = scoring_input(self.encode(text), self.spec.max_model_len, self.suffix_ids)
            inputs.append(ids)
            truncated += cut
        return (self.score_ids(inputs) if inputs else []), truncated


class EmbeddingEngine(_TokenizingEngine):
    """Texts in, one unit-length vector each out (an encoder, or a language model's pooled states)."""

    @abstractmethod
    def embed_ids(self, inputs: Sequence[list[int]]) -> list[list[float]]:
        """One vector of length 1 per tokenized input."""

    def embed_texts(self, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        """Vectors of plain texts, and how many were cut to the model's context length."""
        inputs, truncated = [], 0
        for text in texts:
            ids = self.encode(text)
            if len(ids) > self.spec.max_model_len:
                ids, truncated = ids[: self.spec.max_model_len], truncated + 1
            inputs.append(ids)
        return (self.embed_ids(inputs) if inputs else []), truncated
