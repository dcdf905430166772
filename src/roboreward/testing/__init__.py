"""Offline stand-ins for tests and the demo: tiny random Qwen-VL models, their tokenizer, a chat server.

- `roboreward.testing.tiny`: `make_tiny_vlm`, `make_tiny_lm` (built from configs, random weights);
- `roboreward.testing.tokenizer`: the locally trained BPE tokenizer with Qwen's special tokens;
- `roboreward.testing.chat_server`: `ScriptedChatServer`, an OpenAI-compatible server that answers
  from a script (vLLM's request and response shapes).
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "EXTRA_TOKENS": "tokenizer",
        "QWEN2_LM_CHAT_TEMPLATE": "tokenizer",
        "QWEN2_VL_CHAT_TEMPLATE": "tokenizer",
        "QWEN3_LM_CHAT_TEMPLATE": "tokenizer",
        "QWEN3_VL_CHAT_TEMPLATE": "tokenizer",
        "SPECIAL_TOKENS": "tokenizer",
        "build_tokenizer": "tokenizer",
        "tokenizer_corpus": "tokenizer",
        "LM_FAMILIES": "tiny",
        "SIZES": "tiny",
        "VLM_FAMILIES": "tiny",
        "make_tiny_lm": "tiny",
        "make_tiny_vlm": "tiny",
        "Reply": "chat_server",
        "ScriptedChatServer": "chat_server",
        "prompt_text": "chat_server",
    },
)
