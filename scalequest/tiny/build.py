"""Build the embedded tiny models without downloads: a byte-level BPE tokenizer in Qwen2's
pipeline, a small Qwen2 causal LM trained briefly on the templated corpus, and a reward model
(sequence classification, one output) fine-tuned from it on right/wrong solutions."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from ..atomic import atomic_dir
from ..progress import progress
from ..prompts import PROMPT_STYLES, REWRITE_PROMPTS, response_messages, reward_messages, solvability_messages
from .corpus import LM_PROBLEMS, Problem, judge_reply, make_problems, rewrite_reply, solution_reply

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
# Qwen2's pre-tokenizer split: AutoTokenizer rebuilds a qwen2 tokenizer with this pipeline,
# so the trained tokenizer must use it too or ids would differ between engines.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
MODEL_SHAPE = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=2048)


def train_tokenizer(texts: Sequence[str], vocab_size: int = 2048):
    """A byte-level BPE tokenizer with Qwen2's normalizer/pre-tokenizer and a ChatML template."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, IM_START, IM_END],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=IM_END,
                                        additional_special_tokens=[IM_START, IM_END])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def lm_examples(problems: Sequence[Problem], tokenizer, rng: random.Random) -> list[tuple[str, str]]:
    """(prompt, completion) pairs: questions after each generator style's user-turn prefix,
    judge turns, solution turns and (for some problems) QPO optimizer turns. Questions are repeated so that,
    given a bare user turn, the model mostly writes a question rather than one of the solver's instructions."""

    def chat(messages):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    examples = []
    for problem in problems:
        for style in PROMPT_STYLES.values():
            text = style.question_text(problem.question, IM_END)
            examples += [(style.user_prefix, text[len(style.user_prefix):])] * 2
        examples.append((chat(solvability_messages(problem.question)), judge_reply(problem) + IM_END))
        if problem.solvable:
            examples.append((chat(response_messages(problem.question)), solution_reply(problem, rng)[0] + IM_END))
        if rng.random() < 0.25:
            prompt = rng.choice(sorted(REWRITE_PROMPTS))
            examples.append((chat(REWRITE_PROMPTS[prompt].messages(problem.question)),
                             rewrite_reply(prompt, rng) + IM_END))
    rng.shuffle(examples)
    return examples


def _length_buckets(encoded: list[list[int]], bounds: tuple[int, ...] = (64, 160)) -> list[list[int]]:
    """Indices of examples grouped by length: a batch drawn from one group is padded only to
    lengths like its own (questions, judge turns and optimizer turns differ several-fold)."""
    groups: dict[int, list[int]] = {}
    for index, ids in enumerate(encoded):
        groups.setdefault(sum(len(ids) > bound for bound in bounds), []).append(index)
    return [groups[key] for key in sorted(groups)]


def _batches(encoded: list[list[int]], batch_size: int, steps: int, pad_id: int, rng: random.Random):
    import torch

    buckets = _length_buckets(encoded)
    for _ in range(steps):
        bucket = rng.choices(buckets, [len(b) for b in buckets])[0]
        chosen = rng.sample(bucket, min(batch_size, len(bucket)))
        batch = [encoded[i] for i in chosen]
        width = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        yield ids, mask, chosen


def _train(model, batches, steps: int, lr: float, desc: str, loss_of) -> float:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / steps)
    model.train()
    loss = float("nan")
    bar = progress(batches, total=steps, desc=desc, unit="step")
    for batch in bar:
        value = loss_of(model, batch)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        loss = value.item()
        bar.set_postfix(loss=f"{loss:.3f}")
    model.eval()
    return loss


def build_tiny_lm(out_dir: str | Path, seed: int = 0, problems: int = LM_PROBLEMS, steps: int = 700) -> float:
    """Train and save the tiny causal LM (with its tokenizer) to `out_dir`; returns the last loss."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    rng = random.Random(seed)
    corpus = make_problems(problems, seed)
    bootstrap = train_tokenizer([])  # chat template only, to render the training texts
    examples = lm_examples(corpus, bootstrap, rng)
    tokenizer = train_tokenizer([prompt + completion for prompt, completion in examples])
    eos_id, pad_id = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(PAD)
    config = Qwen2Config(vocab_size=len(tokenizer), tie_word_embeddings=True, eos_token_id=eos_id,
                         pad_token_id=pad_id, bos_token_id=None, **MODEL_SHAPE)
    model = Qwen2ForCausalLM(config)
    # Prompt and completion are tokenized apart, as at inference, where the prompt ends the input.
    encoded = [tokenizer(prompt)["input_ids"] + tokenizer(completion)["input_ids"] for prompt, completion in examples]

    def lm_loss(model, batch):
        ids, mask, _ = batch
        labels = ids.masked_fill(mask == 0, -100)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    loss = _train(model, _batches(encoded, 32, steps, pad_id, rng), steps, 3e-3, "tiny LM", lm_loss)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return loss


def build_tiny_reward(lm_dir: str | Path, out_dir: str | Path, seed: int = 0, problems: int = 1500,
                      steps: int = 150) -> float:
    """Fine-tune a one-output sequence classifier from the tiny LM: 1 for a right final answer,
    0 for a wrong or missing one. Saved with the LM's tokenizer; returns the last loss."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed + 1)
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(lm_dir, num_labels=1, problem_type="regression")
    model.config.pad_token_id = tokenizer.pad_token_id
    examples = []
    for problem in make_problems(problems, seed + 1):
        if problem.solvable:
            response, right = solution_reply(problem, rng)
            text = tokenizer.apply_chat_template(reward_messages(problem.question, response), tokenize=False)
            examples.append((tokenizer(text)["input_ids"], 1.0 if right else 0.0))
    encoded = [ids for ids, _ in examples]

    def regression_loss(model, batch):
        ids, mask, chosen = batch
        targets = torch.tensor([examples[i][1] for i in chosen])
        logits = model(input_ids=ids, attention_mask=mask).logits[:, 0]
        return torch.nn.functional.mse_loss(logits, targets)

    loss = _train(model, _batches(encoded, 32, steps, tokenizer.pad_token_id, rng), steps, 1e-3, "tiny reward",
                  regression_loss)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return loss
