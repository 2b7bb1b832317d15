"""Prompt text: the question-generation prefixes per prompt style, and the solver's prompts.

The generation prefix is the chat text that opens a user turn, so that a QFT-trained solver
continues it with a question and ends the turn.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptStyle:
    """How a generator model's chat format opens and closes a user turn."""

    name: str
    user_prefix: str
    stop: tuple[str, ...]

    def question_text(self, question: str, eos: str) -> str:
        """The full training text of one question in this style (used by QFT and the tiny model)."""
        if self.name == "deepseek-math":
            return f"{self.user_prefix}{question}\n\n{eos}"
        return f"{self.user_prefix}{question}{eos}"


PROMPT_STYLES = {
    "qwen2-math": PromptStyle(
        name="qwen2-math",
        user_prefix="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
        stop=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    ),
    "deepseek-math": PromptStyle(
        name="deepseek-math",
        user_prefix="User: ",
        stop=("User:", "Assistant:"),
    ),
}

SOLVABILITY_PROMPT = (
    "You are a math teacher reviewing a question written for your students. Decide whether it is "
    "a math problem, and whether it can be solved from the conditions it states alone, with no "
    "missing, vague or contradictory information. Think it through step by step, then end with a "
    "last line that reads \"Verdict: Yes\" or \"Verdict: No\".\n\nQuestion: {question}"
)

RESPONSE_PROMPT = "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def solvability_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": SOLVABILITY_PROMPT.format(question=question)}]


def response_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": RESPONSE_PROMPT.format(question=question)}]


def reward_messages(question: str, response: str) -> list[dict[str, str]]:
    """The conversation a reward model scores: the bare question and one response."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
