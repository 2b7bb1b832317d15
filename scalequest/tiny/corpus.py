"""Templated math text for the tiny model: word problems with worked solutions, unsolvable
variants, a few in other scripts, and judge replies, so every stage of the demo carries data."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

NAMES = ["Tom", "Anna", "Ben", "Lucy", "Omar", "Mia", "Ravi", "Sara", "Leo", "Emma", "Noah", "Zoe"]
ITEMS = ["apples", "pencils", "books", "marbles", "stickers", "cookies", "coins", "cards"]


@dataclass(frozen=True)
class Problem:
    """A question, whether it is solvable, a worked solution and its final answer."""

    question: str
    solvable: bool
    solution: str
    answer: int | None


def _add(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 60), rng.randint(2, 40)
    return Problem(f"{name} has {a} {item} and buys {b} more. How many {item} does {name} have now?", True,
                   f"{name} starts with {a} {item} and gets {b} more, so {a} + {b} = {a + b}.", a + b)


def _subtract(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    b = rng.randint(2, 30)
    a = b + rng.randint(1, 50)
    return Problem(f"{name} had {a} {item} and gave {b} of them to a friend. How many {item} are left?", True,
                   f"{name} gives away {b} of {a} {item}, so {a} - {b} = {a - b} are left.", a - b)


def _multiply(rng: random.Random) -> Problem:
    item = rng.choice(ITEMS)
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return Problem(f"Each box holds {a} {item}. How many {item} are in {b} boxes?", True,
                   f"There are {b} boxes with {a} {item} each, so {b} * {a} = {a * b}.", a * b)


def _divide(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 12), rng.randint(2, 9)
    return Problem(f"{name} shares {a * b} {item} equally among {b} friends. How many {item} does each friend get?",
                   True, f"Each friend gets {a * b} / {b} = {a}.", a)


def _linear(rng: random.Random) -> Problem:
    k, x, c = rng.randint(2, 9), rng.randint(1, 20), rng.randint(1, 99)
    return Problem(f"If {k}x + {c} = {k * x + c}, what is the value of x?", True,
                   f"Subtract {c} from both sides: {k}x = {k * x}. Divide by {k}: x = {x}.", x)


def _area(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 30), rng.randint(2, 30)
    return Problem(f"A rectangle is {a} cm long and {b} cm wide. What is its area in square centimeters?", True,
                   f"The area is length times width: {a} * {b} = {a * b}.", a * b)


def _speed(rng: random.Random) -> Problem:
    v, t = rng.randint(20, 90), rng.randint(2, 6)
    return Problem(f"A car travels at {v} km per hour for {t} hours. How far does it travel in km?", True,
                   f"Distance is speed times time: {v} * {t} = {v * t}.", v * t)


def _unsolvable(rng: random.Random) -> Problem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    question = rng.choice([
        f"{name} has some {item} and buys a few more. How many {item} does {name} have now?",
        f"If kx + {rng.randint(1, 50)} = {rng.randint(51, 99)}, what is the value of x?",
        f"A rectangle is {rng.randint(2, 30)} cm long. What is its area in square centimeters?",
        f"Each box holds many {item}. How many {item} are in the boxes?",
    ])
    return Problem(question, False, "The question does not give enough information to find a single answer.", None)


def _symbols(rng: random.Random) -> Problem:
    """Latin text with math symbols: dropped by the ASCII rule, kept by the script-aware rule."""
    a, b = rng.randint(2, 30), rng.randint(2, 30)
    return Problem(f"A square tile is {a} cm × {a} cm. What is its area in cm²?", True,
                   f"The area is {a} × {a} = {a * a}.", a * a) if rng.random() < 0.5 else Problem(
        f"A book costs €{a} and a pen costs €{b}. What do both cost together in €?", True,
        f"Together they cost {a} + {b} = {a + b}.", a + b)


def _other_script(rng: random.Random) -> Problem:
    """Questions in other scripts: dropped by both language rules."""
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return Problem(rng.choice([f"小明有{a}个苹果，又买了{b}个。他现在有几个苹果？",
                               f"У Тома {a} яблок, он купил ещё {b}. Сколько яблок у Тома?"]), True,
                   f"{a} + {b} = {a + b}.", a + b)


# (maker, weight): mostly solvable ASCII problems, as a solver's questions mostly are.
MAKERS: list[tuple[Callable[[random.Random], Problem], float]] = [
    (_add, 3), (_subtract, 3), (_multiply, 3), (_divide, 2), (_linear, 3), (_area, 2), (_speed, 2),
    (_unsolvable, 3), (_symbols, 1), (_other_script, 1),
]


LM_PROBLEMS = 3000  # problems in the tiny LM's training corpus


def make_problems(count: int, seed: int) -> list[Problem]:
    """`count` problems drawn from the weighted templates, reproducibly."""
    rng = random.Random(seed)
    makers, weights = zip(*MAKERS)
    return [rng.choices(makers, weights)[0](rng) for _ in range(count)]


def judge_reply(problem: Problem) -> str:
    """A judge's reasoning ending in the verdict line the solvability prompt asks for."""
    if problem.solvable:
        return "The question states every quantity it needs, so it can be solved step by step.\nVerdict: Yes"
    return "A quantity the question needs is missing, so it cannot be solved from its own conditions.\nVerdict: No"


def solution_reply(problem: Problem, rng: random.Random) -> tuple[str, bool]:
    """A worked solution and whether its final answer is right; some are wrong or give no answer,
    so that best-of-n and the final-answer filter have something to choose and drop."""
    if problem.answer is None:
        return problem.solution + " I cannot give a final answer.", False
    roll = rng.random()
    if roll < 0.12:
        return problem.solution + " I am not sure about the result.", False
    if roll < 0.35:
        wrong = problem.answer + rng.choice([-3, -2, -1, 1, 2, 5, 10])
        return f"{problem.solution} The answer is \\boxed{{{wrong}}}.", False
    return f"{problem.solution} The answer is \\boxed{{{problem.answer}}}.", True


SOLVABLE_MAKERS = [(maker, weight) for maker, weight in MAKERS if maker in (_add, _subtract, _multiply, _divide,
                                                                              _linear, _area, _speed)]


def rewrite_reply(prompt_name: str, rng: random.Random) -> str:
    """An optimizer's reply in the format of a QPO rewrite prompt, ending with a sound problem
    (a fresh one: the tiny model only has to learn the format and write a good question)."""
    makers, weights = zip(*SOLVABLE_MAKERS)
    question = rng.choices(makers, weights)[0](rng).question
    if prompt_name == "solvability":
        return (f"CREATED QUESTION: {question}\nVERIFICATION AND MODIFICATION: Every quantity is given and the "
                f"numbers make sense, so it has one answer.\nFINAL QUESTION: {question}")
    return (f"Step 1 #Methods List#: Add a condition or one more step.\nStep 2 #Plan#: Ask for one more step.\n"
            f"Step 3 #Rewritten Problem#: {question}\nStep 4 #Finally Rewritten Problem#: {question}")
