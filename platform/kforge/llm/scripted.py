"""A deterministic backend whose answers are given in advance: for tests and dry runs of the HTTP
path (``LLMServer(ScriptedBackend(...))``) where loading a real model would be too slow."""

from collections.abc import Callable

from kforge.llm.base import Completion, GenParams


class ScriptedBackend:
    """Answers ``reply(system, user)`` (or the fixed string ``reply``) and records every call."""

    name = "scripted"

    def __init__(self, reply: Callable[[str, str], str] | str = "score: 4\nreason: clear subject",
                 model: str = "scripted-1") -> None:
        self.reply, self.model = reply, model
        self.calls: list[tuple[str, str, GenParams]] = []

    def complete(self, system: str, user: str, params: GenParams) -> Completion:
        self.calls.append((system, user, params))
        return Completion(self.reply(system, user) if callable(self.reply) else self.reply, self.model)
