"""The server's model is scripted (the HTTP client path stays real); tests marked slow use the
embedded SmolLM2, which takes ~20 s to load on 2 cores."""

from collections.abc import Iterator

import pytest
from kforge.llm.scripted import ScriptedBackend
from kforge.llm.server import LLMServer


@pytest.fixture()
def scripted() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture()
def server(scripted: ScriptedBackend) -> Iterator[LLMServer]:
    with LLMServer(scripted) as srv:
        yield srv
