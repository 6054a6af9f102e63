"""A pluggable LLM: the embedded SmolLM2-135M-Instruct by default, or an OpenAI-compatible / Ollama
server. Every answer carries its provenance (:class:`LLMAnswer`)."""

from kforge.llm.base import (
                             BACKENDS,
                             Backend,
                             Completion,
                             GenParams,
                             LLMAnswer,
                             LLMConfig,
                             PromptTemplate,
                             ask,
                             make_backend,
)

__all__ = ["BACKENDS", "Backend", "Completion", "GenParams", "LLMAnswer", "LLMConfig", "PromptTemplate", "ask",
           "make_backend"]
