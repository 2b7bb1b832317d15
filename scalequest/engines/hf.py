"""The `hf` engine: batched transformers generation, sequence-classification scoring and embeddings."""
from __future__ import annotations

from itertools import groupby
from typing import Iterator, Sequence

from ..models import ModelSpec
from ..progress import progress
from .base import Completion, EmbeddingEngine, GenerationEngine, Sampling, ScoringEngine
from .pooling import CLS, LAST, pooling_mode


def _torch_dtype(name: str):
    import torch

    return {"auto": "auto", "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def _left_padded(batch: Sequence[list[int]], pad_id: int, device):
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        attention[row, width - len(ids):] = 1
    return input_ids.to(device), attention.to(device)


def _batches(prompts: Sequence[list[int]], positions: Sequence[int],
             batch_size: int) -> Iterator[tuple[int, list[list[int]]]]:
    """The prompts grouped by the batch their call position falls in: (the batch's first position, its prompts)."""
    for number, group in groupby(range(len(prompts)), key=lambda i: positions[i] // batch_size):
        yield number * batch_size, [prompts[i] for i in group]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_model(auto_class, spec: ModelSpec):
    """The model on the GPU when there is one; with `gpus` > 1 its layers are spread over the visible
    GPUs (device_map auto)."""
    import torch

    options = dict(dtype=_torch_dtype(spec.dtype), trust_remote_code=spec.trust_remote_code)
    if spec.gpus > 1 and torch.cuda.is_available():
        return auto_class.from_pretrained(spec.path, device_map="auto", **options).eval()
    return auto_class.from_pretrained(spec.path, **options).to(_device()).eval()


def _load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.path, trust_remote_code=spec.trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class HFGenerator(GenerationEngine):
    """transformers `generate`, one padded batch of prompts at a time."""

    def __init__(self, spec: ModelSpec):
        from transformers import AutoModelForCausalLM

        self.spec = spec
        self.tokenizer = _load_tokenizer(spec)
        self.model = _load_model(AutoModelForCausalLM, spec)

    def generate_ids(self, prompts: Sequence[list[int]], sampling: Sampling,
                     positions: Sequence[int]) -> list[list[Completion]]:
        import torch

        stop_ids, stop_strings = self.split_stops(sampling.stop)
        pad_id = self.tokenizer.pad_token_id
        results: list[list[Completion]] = []
        bar = progress(total=len(prompts), desc=f"generate [{self.spec.key}]", unit="prompt")
        generated_tokens = 0
        for first, batch in _batches(prompts, positions, self.spec.batch_size):
            input_ids, attention = _left_padded(batch, pad_id, self.model.device)
            # The batch of call positions [first, first + batch_size) is seeded by its first position: the
            # same batches and seeds however the call's prompts were split into chunks of whole batches.
            torch.manual_seed(sampling.seed + first)
            sample = sampling.temperature > 0
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=attention,
                    do_sample=sample,
                    temperature=sampling.temperature if sample else None,
                    top_p=sampling.top_p if sample else None,
                    top_k=None,
                    max_new_tokens=min(sampling.max_tokens, self.spec.max_model_len - input_ids.shape[1]),
                    num_return_sequences=sampling.n,
                    eos_token_id=stop_ids,
                    pad_token_id=pad_id,
                    stop_strings=stop_strings or None,
                    tokenizer=self.tokenizer if stop_strings else None,
                )
            new_tokens = output[:, input_ids.shape[1]:].tolist()
            for row in range(len(batch)):
                completions = [self._completion(ids, stop_ids, stop_strings, pad_id)
                               for ids in new_tokens[row * sampling.n:(row + 1) * sampling.n]]
                generated_tokens += sum(c.tokens for c in completions)
                results.append(completions)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{generated_tokens / max(bar.format_dict['elapsed'], 1e-9):.0f}")
        bar.close()
        return results

    def _completion(self, ids: list[int], stop_ids: list[int], stop_strings: list[str], pad_id: int) -> Completion:
        # Rows that stopped early are padded to the batch's length (a pad that is also a stop
        # token is found by the loop below instead).
        while pad_id not in stop_ids and ids and ids[-1] == pad_id:
            ids = ids[:-1]
        finished = False
        for pos, token in enumerate(ids):
            if token in stop_ids:
                ids, finished = ids[:pos], True
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        for stop in stop_strings:
            cut = text.find(stop)
            if cut != -1:
                text, finished = text[:cut], True
        return Completion(text=text, tokens=len(ids), finished=finished)


class HFScorer(ScoringEngine):
    """A sequence-classification model with one output, in padded batches."""

    def __init__(self, spec: ModelSpec):
        from transformers import AutoModelForSequenceClassification

        self.spec = spec
        self.tokenizer = _load_tokenizer(spec)
        self.model = _load_model(AutoModelForSequenceClassification, spec)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{spec.path}: a scoring model needs num_labels=1, it has {self.model.config.num_labels}")
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def score_ids(self, inputs: Sequence[list[int]]) -> list[float]:
        import torch

        scores: list[float] = []
        for start in progress(range(0, len(inputs), self.spec.batch_size), desc=f"score [{self.spec.key}]",
                              unit="batch"):
            batch = list(inputs[start:start + self.spec.batch_size])
            input_ids, attention = _left_padded(batch, self.tokenizer.pad_token_id, self.model.device)
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=attention).logits
            scores.extend(logits[:, 0].float().tolist())
        return scores


class HFEmbedder(EmbeddingEngine):
    """Any transformers encoder or language model (AutoModel): its last hidden states pooled as its
    sentence-transformers config says (mean by default: engines/pooling.py), scaled to length 1."""

    def __init__(self, spec: ModelSpec):
        from transformers import AutoModel

        self.spec = spec
        self.tokenizer = _load_tokenizer(spec)
        self.model = _load_model(AutoModel, spec)
        self.pooling = pooling_mode(spec.path)

    def embed_ids(self, inputs: Sequence[list[int]]) -> list[list[float]]:
        import torch

        vectors: list[list[float]] = []
        for start in progress(range(0, len(inputs), self.spec.batch_size), desc=f"embed [{self.spec.key}]",
                              unit="batch"):
            batch = list(inputs[start:start + self.spec.batch_size])
            input_ids, attention = _left_padded(batch, self.tokenizer.pad_token_id, self.model.device)
            with torch.inference_mode():
                states = self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state.float()
            vectors.extend(torch.nn.functional.normalize(self._pool(states, attention), dim=-1).tolist())
        return vectors

    def _pool(self, states, attention):
        """[batch, tokens, hidden] → [batch, hidden]; inputs are left-padded, so the last token is the last column."""
        if self.pooling == LAST:
            return states[:, -1]
        if self.pooling == CLS:
            first = attention.argmax(dim=1)  # the first real token of each left-padded row
            return states[range(len(states)), first]
        mask = attention.unsqueeze(-1).float()
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
