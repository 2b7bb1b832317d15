"""GPUs per job from the models' settings, and the one list of GPU rules."""
import pytest
import yaml

from conftest import REPO
from scalequest.config import ConfigError, validate_config
from scalequest.gpu_jobs import job_gpus, model_gpus


@pytest.fixture
def config():
    return validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))


@pytest.mark.parametrize("entry, gpus", [
    ({"engine": "vllm"}, 1),
    ({"engine": "vllm", "vllm_args": {"tensor_parallel_size": 4}}, 4),
    ({"engine": "vllm", "vllm_args": {"tensor_parallel_size": 2, "pipeline_parallel_size": 2}}, 4),
    ({"engine": "vllm", "vllm_args": {"tensor_parallel_size": 2}, "gpus": 2}, 2),
    ({"engine": "hf"}, 1),
    ({"engine": "hf", "gpus": 3}, 3),
    ({"engine": "openai"}, 0),
])
def test_a_models_gpus_come_from_its_settings(entry, gpus):
    assert model_gpus(entry) == gpus


def test_contradicting_gpu_settings_name_the_model_key(config):
    config["models"]["qwen2-math-7b-instruct"].update(gpus=2, vllm_args={"tensor_parallel_size": 4})
    with pytest.raises(ConfigError, match=r"'models.qwen2-math-7b-instruct.gpus': gpus is 2 but vllm_args asks for 4"):
        validate_config(config)


def test_a_job_takes_the_gpus_of_the_models_it_loads(config):
    config["models"]["deepseek-math-7b-rl"]["vllm_args"]["tensor_parallel_size"] = 2
    assert job_gpus(config, "generate", "deepseek-math") == 2 and job_gpus(config, "generate", "qwen2-math") == 1
    assert job_gpus(config, "generate") == 2  # any generator's job
    assert job_gpus(config, "qpo_rewrite") == 0  # an API optimizer, no judge
    config["qpo"]["judge"] = True
    assert job_gpus(config, "qpo_rewrite") == 1  # the solvability judge runs beside it
    config["filter"]["solvability"]["enabled"] = False
    assert job_gpus(config, "filter") == 0  # the language rule alone
