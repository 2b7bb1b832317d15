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
    turn_end: str | None = None  # the token that closes a user turn; None: the tokenizer's EOS

    def question_text(self, question: str, eos: str) -> str:
        """The full training text of one question in this style (used by QFT and the tiny model)."""
        return self.user_prefix + self.question_completion(question, eos)

    def question_completion(self, question: str, eos: str) -> str:
        """What a question generator writes after the user-turn prefix: the question, then the
        end of the turn (`eos` where the style has no turn token of its own)."""
        end = self.turn_end or eos
        if self.name == "deepseek-math":
            return f"{question}\n\n{end}"
        return f"{question}{end}"


PROMPT_STYLES = {
    "qwen2-math": PromptStyle(
        name="qwen2-math",
        user_prefix="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
        stop=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
        turn_end="<|im_end|>",
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

SAME_PROBLEM_PROMPT = (
    "Two math problems follow. Decide whether they are the same problem: the same quantities and the "
    "same question asked, however differently they are worded. A problem with other numbers, or one "
    "that asks for something else, is a different problem. Think it through briefly, then end with a "
    "last line that reads \"Verdict: Yes\" or \"Verdict: No\".\n\nProblem A: {first}\n\nProblem B: {second}"
)

RESPONSE_PROMPT = "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."

# The chat format of a base model whose tokenizer has none (Mistral-7B, Llama-3-8B): what SFT trains
# it on and what the engines render for it. "<bos>User: ...\n\nAssistant: ...<eos>", as DeepSeekMath's.
# The template writes the BOS: TRL tokenizes a rendered chat without adding special tokens, and the
# engines add none to a text that starts with it, so training and scoring both see it once.
PLAIN_CHAT_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ message['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def solvability_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": SOLVABILITY_PROMPT.format(question=question)}]


def same_problem_messages(question: str, benchmark_question: str) -> list[dict[str, str]]:
    """The contamination judge's conversation: is the question the benchmark item, reworded?"""
    return [{"role": "user", "content": SAME_PROBLEM_PROMPT.format(first=question, second=benchmark_question)}]


def response_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": RESPONSE_PROMPT.format(question=question)}]


def reward_messages(question: str, response: str) -> list[dict[str, str]]:
    """The conversation a reward model scores: the bare question and one response."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": response}]


@dataclass(frozen=True)
class RewritePrompt:
    """A QPO optimizer prompt: what to ask, and the marker after which its reply holds the
    rewritten question (the last occurrence counts)."""

    name: str
    template: str
    marker: str

    def messages(self, question: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.template.format(question=question)}]


REWRITE_PROMPTS = {
    "solvability": RewritePrompt(
        name="solvability",
        marker="FINAL QUESTION",
        template=(
            "As a math teacher, you are checking a problem drafted for your class before it is handed out.\n"
            "1. Make sure it is a genuine math problem with a single numerical answer that follows from the "
            "conditions it gives, and that its quantities make sense in the real world (no negative counts, "
            "no half people, no contradictions).\n"
            "2. If anything is missing, unclear or impossible, repair it; if it cannot be repaired, write a "
            "closely related problem that is sound.\n"
            "3. If the problem can be answered in one step, change it so that it needs several steps of "
            "reasoning.\n\n"
            "Answer in three parts, each starting with its label:\n"
            "CREATED QUESTION: your first version of the problem\n"
            "VERIFICATION AND MODIFICATION: what you checked, what was wrong and what you changed\n"
            "FINAL QUESTION: the finished problem alone, with no solution\n\n"
            "Draft problem: {question}"
        ),
    ),
    "difficulty": RewritePrompt(
        name="difficulty",
        marker="#Finally Rewritten Problem#",
        template=(
            "Rewrite the math problem below into a harder one that a strong student would still find "
            "solvable. Work in four steps, each starting with its label:\n"
            "Step 1 #Methods List#: ways to make this problem more demanding, such as an extra condition, "
            "one more reasoning step, or a second concept it must combine with.\n"
            "Step 2 #Plan#: which of those methods you will use and how.\n"
            "Step 3 #Rewritten Problem#: the rewritten problem, adding only 10 to 20 words to the original.\n"
            "Step 4 #Finally Rewritten Problem#: check the rewrite for errors and ambiguity, then give the "
            "final problem alone, with no solution.\n\n"
            "#Problem#: {question}"
        ),
    ),
}
