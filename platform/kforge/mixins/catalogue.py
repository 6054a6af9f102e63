"""The catalogue: shipped mixins and node types plus user-registered modules, with traits.

User modules are registered per kforge home (``<home>/mixins/modules.json``). A module contributes
every class it defines that subclasses :class:`~kforge.mixins.components.base.Mixin` (a mixin,
named by its class name minus ``Mixin``) or :class:`~kforge.mixins.components.base.NodeBase` with
its own ``node_type`` (a node type).

Example::

    cat = load_catalogue(Paths.of(tmp))
    cat.mixin("Caching")            # -> CachingMixin
    cat.traits_frame().height       # -> 16 (+ registered)
"""

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from kforge.config import Paths
from kforge.errors import InputError
from kforge.mixins.components import BUILTIN_MIXINS, BUILTIN_NODES
from kforge.mixins.components.base import Mixin, NodeBase
from kforge.mixins.introspect import class_traits


@dataclass
class Catalogue:
    mixins: dict[str, type[Mixin]] = field(default_factory=dict)
    nodes: dict[str, type[NodeBase]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def mixin(self, name: str) -> type[Mixin]:
        return self.mixins[self.canonical(name)]

    def canonical(self, name: str) -> str:
        """Case-insensitive lookup, accepting an optional ``Mixin`` suffix."""
        key = name.strip().lower().removesuffix("mixin")
        for n in self.mixins:
            if n.lower() == key:
                return n
        raise InputError(f"unknown mixin {name!r}; known: {', '.join(sorted(self.mixins))}")

    def node_type(self, name: str) -> str:
        key = name.strip().upper()
        if key not in self.nodes:
            raise InputError(f"unknown node type {name!r}; known: {', '.join(sorted(self.nodes))}")
        return key

    def traits(self) -> dict[str, dict[str, Any]]:
        return _traits_cached(self)

    def traits_frame(self) -> pl.DataFrame:
        rows = []
        for name, t in self.traits().items():
            rows.append({"name": name, "kind": "node" if name in self.nodes else "mixin",
                         "origin": self.origin.get(name, "builtin"),
                         **{k: (",".join(v) if isinstance(v, list) else v) for k, v in t.items() if k != "name"}})
        return pl.DataFrame(rows)


_TRAITS: dict[tuple[tuple[str, type], ...], dict[str, dict[str, Any]]] = {}


def _traits_cached(cat: Catalogue) -> dict[str, dict[str, Any]]:
    key = tuple(sorted({**cat.mixins, **cat.nodes}.items(), key=lambda kv: kv[0]))
    if key not in _TRAITS:
        _TRAITS[key] = {n: class_traits(c) for n, c in key}
    return _TRAITS[key]


def _registry_file(paths: Paths) -> Path:
    return paths.home / "mixins" / "modules.json"


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.exists():
            raise InputError(f"mixin module {spec}: no such file")
        name = f"kforge_user_mixins_{path.stem}_{abs(hash(str(path.resolve()))) % 10**8}"
        if name in sys.modules:
            return sys.modules[name]
        mod_spec = importlib.util.spec_from_file_location(name, path)
        if mod_spec is None or mod_spec.loader is None:
            raise InputError(f"mixin module {spec}: cannot be imported")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise InputError(f"mixin module {spec} failed to import: {type(exc).__name__}: {exc}") from None
        return module
    try:
        return importlib.import_module(spec)
    except Exception as exc:
        raise InputError(f"mixin module {spec!r} failed to import: {type(exc).__name__}: {exc}") from None


def discover(module: ModuleType) -> tuple[dict[str, type[Mixin]], dict[str, type[NodeBase]]]:
    """Mixin and node classes defined in ``module`` itself."""
    mixins: dict[str, type[Mixin]] = {}
    nodes: dict[str, type[NodeBase]] = {}
    for obj in vars(module).values():
        if not isinstance(obj, type) or obj.__module__ != module.__name__:
            continue
        if issubclass(obj, Mixin) and obj is not Mixin:
            mixins[obj.__name__.removesuffix("Mixin")] = obj
        elif issubclass(obj, NodeBase) and "node_type" in vars(obj):
            nodes[str(obj.node_type).upper()] = obj
    return mixins, nodes


def _add(cat: Catalogue, spec: str) -> None:
    mixins, nodes = discover(_import(spec))
    if not mixins and not nodes:
        raise InputError(f"{spec} defines no Mixin subclasses and no NodeBase subclasses with a node_type")
    for name, cls in mixins.items():
        if name in cat.mixins and cat.mixins[name] is not cls:
            raise InputError(f"{spec}: mixin {name!r} is already defined ({cat.origin.get(name, 'builtin')})")
        if "process" not in vars(cls) and "aprocess" not in vars(cls) and not any(
                "process" in vars(b) for b in cls.__mro__[1:] if issubclass(b, Mixin) and b is not Mixin):
            raise InputError(f"{spec}: mixin {cls.__name__} wraps neither process() nor aprocess()")
        cat.mixins[name] = cls
        cat.origin[name] = spec
    for name, ncls in nodes.items():
        if name in cat.nodes and cat.nodes[name] is not ncls:
            raise InputError(f"{spec}: node type {name!r} is already defined ({cat.origin.get(name, 'builtin')})")
        cat.nodes[name] = ncls
        cat.origin[name] = spec


def registered_modules(paths: Paths) -> list[str]:
    f = _registry_file(paths)
    if not f.exists():
        return []
    try:
        data = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{f} is not valid JSON ({exc.msg}); fix or delete it") from None
    return [str(m) for m in data.get("modules", [])]


def load_catalogue(paths: Paths | None = None, extra: list[str] | None = None) -> Catalogue:
    cat = Catalogue(dict(BUILTIN_MIXINS), dict(BUILTIN_NODES))
    for spec in [*(registered_modules(paths) if paths else []), *(extra or [])]:
        _add(cat, spec)
    return cat


def register_module(paths: Paths, spec: str) -> Catalogue:
    """Validate a user module (file path or dotted name) and record it for this kforge home."""
    spec = str(Path(spec).resolve()) if spec.endswith(".py") else spec
    current = registered_modules(paths)
    cat = load_catalogue(paths, extra=[] if spec in current else [spec])
    if spec not in current:
        f = _registry_file(paths)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"modules": [*current, spec]}, indent=2))
    return cat
