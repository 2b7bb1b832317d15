"""The config class of the InternLM2 reward twin (scalequest/tiny/twins.py), shipped in the twin's folder
as its remote code: transformers knows no model_type `internlm2`, so AutoConfig (and vLLM, which loads the
config through it) needs `trust_remote_code` and this file, as with internlm/internlm2-7b-reward.
Written for the twin; it imports nothing but transformers, as a model folder's code must."""
from transformers import PretrainedConfig


class InternLM2Config(PretrainedConfig):
    """InternLM2's fields: a Llama-style decoder with packed `wqkv` attention, `w1`/`w2`/`w3` feed-forward
    and, for the reward model, the token whose `v_head` value is the reward (`reward_token_id`)."""

    model_type = "internlm2"

    def __init__(self, vocab_size=92544, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, hidden_act="silu", max_position_embeddings=32768,
                 initializer_range=0.02, rms_norm_eps=1e-5, use_cache=True, pad_token_id=2, bos_token_id=1,
                 eos_token_id=2, tie_word_embeddings=False, bias=False, rope_theta=1000000.0, rope_scaling=None,
                 attn_implementation="eager", reward_token_id=None, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.bias = bias
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.attn_implementation = attn_implementation
        self.reward_token_id = reward_token_id
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)
