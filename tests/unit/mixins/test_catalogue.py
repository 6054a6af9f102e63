"""Traits are read from the classes; users can register their own mixin modules and node types."""

from pathlib import Path

import pytest
from kforge.config import Paths
from kforge.errors import InputError
from kforge.mixins.catalogue import load_catalogue, register_module
from kforge.mixins.harness import run_trial

USER_MODULE = '''
from kforge.mixins.components.base import Mixin, NodeBase


class MemoMixin(Mixin):
    category = "infrastructure"
    tags = ("caching",)

    def process(self, request):
        memo = self.__dict__.setdefault("_memo", {})
        if request.key in memo:
            return memo[request.key]
        memo[request.key] = out = super().process(request)
        return out

    async def aprocess(self, request):
        return await super().aprocess(request)


class QueueNode(NodeBase):
    node_type = "QUEUE"
    side_effects = True

    def handle(self, request):
        self.env.store.write(request.rid, request.key, request.value)
        return "queued"

    def _apply(self, request):
        self.env.store.write(request.rid, request.key, request.value)
        return "queued"
'''


def test_sixteen_mixins_four_nodes_with_introspected_traits(catalogue):
    assert len(catalogue.mixins) == 16 and sorted(catalogue.nodes) == ["COMPUTE", "EFFECT", "ORCHESTRATOR", "REDUCER"]
    t = catalogue.traits()
    assert t["HealthCheck"]["hook_breaks_chain"] and not t["Logging"]["hook_breaks_chain"]
    assert t["Retry"]["reinvokes"] and not t["Metrics"]["reinvokes"]
    assert t["Caching"]["short_circuits"] and "_cache" in t["Caching"]["state_writes"]
    assert t["Security"]["rewrites_request"]
    assert t["Repository"]["depends_on"] == ["ConnectionMixin"]
    assert t["Timeout"]["uses_threads"] and t["Timeout"]["wraps_async"]
    assert "_failures" in set(t["HealthCheck"]["state_writes"]) & set(t["CircuitBreaker"]["state_writes"])
    assert t["REDUCER"]["state_modifying"] and t["EFFECT"]["side_effects"] and not t["COMPUTE"]["side_effects"]
    assert catalogue.canonical("cachingmixin") == "Caching"
    with pytest.raises(InputError, match="unknown mixin"):
        catalogue.canonical("Frobnicate")
    with pytest.raises(InputError, match="unknown node type"):
        catalogue.node_type("SINK")


def test_register_user_module_and_exercise_it(kforge_home: Path):
    mod = kforge_home / "my_mixins.py"
    mod.write_text(USER_MODULE)
    paths = Paths.of(kforge_home)
    cat = register_module(paths, str(mod))
    assert "Memo" in cat.mixins and "QUEUE" in cat.nodes
    again = load_catalogue(paths)                      # persisted for this home
    assert "Memo" in again.mixins
    assert again.traits()["Memo"]["short_circuits"]
    trial = run_trial(again, ["Memo", "Retry"], "QUEUE", "sync_basic", 3)
    assert trial.node_type == "QUEUE" and trial.mixins == ["Memo", "Retry"]


@pytest.mark.parametrize("content,error", [
    ("x = 1\n", "defines no Mixin subclasses"),
    ("raise RuntimeError('boom')\n", "failed to import: RuntimeError: boom"),
    ("from kforge.mixins.components.base import Mixin\nclass CachingMixin(Mixin):\n"
     "    def process(self, r):\n        return super().process(r)\n", "already defined"),
    ("from kforge.mixins.components.base import Mixin\nclass IdleMixin(Mixin):\n    pass\n", "wraps neither"),
])
def test_bad_user_modules_are_refused(kforge_home: Path, content: str, error: str):
    mod = kforge_home / "bad.py"
    mod.write_text(content)
    with pytest.raises(InputError, match=error):
        register_module(Paths.of(kforge_home), str(mod))
    assert load_catalogue(Paths.of(kforge_home)).mixins.keys() == load_catalogue().mixins.keys()


def test_missing_module_file(kforge_home: Path):
    with pytest.raises(InputError, match="no such file"):
        register_module(Paths.of(kforge_home), str(kforge_home / "nope.py"))
