"""InternLM2ForRewardModel's score computed from a checkpoint's files alone, as its own code computes it, for
the tests to hold the workflow's reward scores against (not the code under test)."""
from __future__ import annotations

import json
from pathlib import Path


def reward_model_ids(folder: Path, conversations: list[list[dict[str, str]]], max_len: int) -> list[list[int]]:
    """The ids internlm2-7b-reward's get_score scores: the chat template's text (it writes the BOS), cut to
    leave room for the reward token of config.json, which ends every input."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    token = json.loads((folder / "config.json").read_text())["reward_token_id"]
    texts = [tokenizer.apply_chat_template(conversation, tokenize=False) for conversation in conversations]
    return [tokenizer(text, add_special_tokens=False)["input_ids"][: max_len - 1] + [token] for text in texts]


def reference_rewards(folder: Path, inputs: list[list[int]]) -> list[float]:
    """InternLM2ForRewardModel's forward, written from its architecture on the checkpoint's tensors in float64:
    embedding; per layer RMSNorm, packed wqkv (per KV head: its query heads, then its key, then its value),
    rotary (half-split), causal grouped attention, wo, residual, RMSNorm, w2(silu(w1 x) * w3 x), residual;
    final RMSNorm; v_head at the last token."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    weights = {name: tensor.double() for name, tensor in load_file(str(folder / "model.safetensors")).items()}
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head, groups = config["hidden_size"] // heads, heads // kv_heads

    def rms_norm(x, gain):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + config["rms_norm_eps"]) * gain

    rewards = []
    for ids in inputs:
        length = len(ids)
        x = weights["model.tok_embeddings.weight"][torch.tensor(ids)]
        frequencies = config["rope_theta"] ** (-torch.arange(0, head, 2, dtype=torch.float64) / head)
        angles = torch.outer(torch.arange(length, dtype=torch.float64), frequencies)
        cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)

        def rotate(t, cos=cos, sin=sin):
            first, second = t[..., : head // 2], t[..., head // 2:]
            return t * cos + torch.cat([-second, first], -1) * sin

        causal = torch.full((length, length), float("-inf"), dtype=torch.float64).triu(1)
        for layer in range(config["num_hidden_layers"]):
            w = {name.split(f"model.layers.{layer}.")[1]: tensor for name, tensor in weights.items()
                 if name.startswith(f"model.layers.{layer}.")}
            h = rms_norm(x, w["attention_norm.weight"])
            packed = (h @ w["attention.wqkv.weight"].T).view(length, kv_heads, groups + 2, head)
            q = packed[:, :, :groups].reshape(length, heads, head).transpose(0, 1)
            k = packed[:, :, groups].transpose(0, 1).repeat_interleave(groups, 0)
            v = packed[:, :, groups + 1].transpose(0, 1).repeat_interleave(groups, 0)
            attention = torch.softmax(rotate(q) @ rotate(k).transpose(1, 2) / head ** 0.5 + causal, -1) @ v
            x = x + attention.transpose(0, 1).reshape(length, heads * head) @ w["attention.wo.weight"].T
            h = rms_norm(x, w["ffn_norm.weight"])
            gated = torch.nn.functional.silu(h @ w["feed_forward.w1.weight"].T) * (h @ w["feed_forward.w3.weight"].T)
            x = x + gated @ w["feed_forward.w2.weight"].T
        final = rms_norm(x, weights["model.norm.weight"])
        rewards.append(float(final[-1] @ weights["v_head.weight"][0]))
    return rewards
