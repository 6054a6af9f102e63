"""The catalogue: shipped mixins and node types plus user-registered modules, with traits.

User modules are registered per kforge home (``<home>/mixins/modules.json``), only by
``kforge mixins register PATH|MODULE`` (:func:`register_module`), which records the sha256 of the
module's source. Later commands run a registered module only from bytes with that hash: a module
that changed, moved, or was never hashed is refused with one error naming the fix, before any of
it runs; a module whose registration was refused is never recorded. ``kforge mixins unregister
NAME`` (:func:`unregister_module`) forgets one. A module contributes every class it defines that
subclasses :class:`~kforge.mixins.components.base.Mixin` (a mixin, named by its class name minus
``Mixin``) or :class:`~kforge.mixins.components.base.NodeBase` with its own ``node_type`` (a node type).

Example::

    cat = load_catalogue(Paths.of(tmp))
    cat.mixin("Caching")            # -> CachingMixin
    cat.traits_frame().height       # -> 16 (+ registered)
"""

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from kforge.config import Paths
from kforge.errors import InputError, StorageError
from kforge.mixins.components import BUILTIN_MIXINS, BUILTIN_NODES
from kforge.mixins.components.base import Mixin, NodeBase
from kforge.mixins.introspect import class_traits
from kforge.storage.lock import file_lock

REGISTRY_VERSION = 2


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


@dataclass(frozen=True)
class Registration:
    """One registered module: what ran when it was registered, by content hash."""

    name: str            # what ``kforge mixins unregister`` takes: the file's stem or the dotted name
    spec: str            # absolute path of a .py file, or a dotted module name
    origin: str          # the source file whose bytes were hashed (== spec for a file)
    sha256: str          # "" for entries written before hashes were recorded: never run
    provides: tuple[str, ...] = ()
    registered_at: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "origin": self.origin, "sha256": self.sha256,
                "provides": list(self.provides), "registered_at": self.registered_at}


def _locate(spec: str) -> tuple[Path, str | None]:
    """(source file, package for relative imports) of a file path or dotted module name, without running it
    (a dotted name's parent packages are imported, as any import would)."""
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"mixin module {spec}: no such file")
        return path, None
    try:
        found = importlib.util.find_spec(spec)
    except (ImportError, ValueError) as exc:
        raise InputError(f"mixin module {spec!r} cannot be found: {exc}") from None
    if found is None:
        raise InputError(f"mixin module {spec!r} cannot be found on the Python path")
    if not isinstance(found.loader, importlib.machinery.SourceFileLoader) or not found.origin:
        raise InputError(f"mixin module {spec!r} is not a Python source file; register a .py file or module")
    package = found.name if found.submodule_search_locations is not None else found.parent
    return Path(found.origin), package


def _name(spec: str) -> str:
    """A registration's name: the file's stem, or the dotted module name."""
    return Path(spec).stem if spec.endswith(".py") else spec


def _ident(spec: str) -> str:
    stem = Path(spec).stem if spec.endswith(".py") else spec
    return "".join(c if c.isalnum() else "_" for c in stem)


def _load(spec: str, expected: Registration | None) -> tuple[ModuleType, str, Path]:
    """Run the module from the bytes it is checked against: (module, sha256, source file).

    With ``expected``, a module whose source moved, changed or was never hashed is refused before
    any of it runs. The module is compiled from the bytes that were hashed (no second read, no .pyc)."""
    try:
        origin, package = _locate(spec)
    except InputError as exc:
        if expected is None:
            raise
        raise InputError(f"{exc} (registered as {expected.name}): restore it, or "
                         f"`kforge mixins unregister {expected.name}`") from None
    if expected is not None:
        if not expected.sha256:
            raise InputError(f"mixin module {expected.name} ({spec}) was registered before kforge recorded hashes, "
                             f"so it is not run: check it, then `kforge mixins register {spec}` again "
                             f"(or `kforge mixins unregister {expected.name}`)")
        if str(origin.resolve()) != expected.origin:
            raise InputError(f"mixin module {expected.name} now resolves to {origin}, not to {expected.origin} "
                             f"where it was registered: not run. Re-register it or "
                             f"`kforge mixins unregister {expected.name}`")
    try:
        source = origin.read_bytes()
    except OSError as exc:
        raise InputError(f"mixin module {spec}: cannot read {origin} ({exc.strerror})") from None
    sha = hashlib.sha256(source).hexdigest()
    if expected is not None and sha != expected.sha256:
        raise InputError(f"mixin module {expected.name} ({origin}) changed since it was registered "
                         f"(sha256 {sha[:12]}, registered {expected.sha256[:12]}): not run. If the change is yours, "
                         f"`kforge mixins register {spec}` again; else `kforge mixins unregister {expected.name}`")
    name = f"kforge_user_mixins_{_ident(spec)}_{sha[:16]}"   # content-addressed: a cached module is these bytes
    if name in sys.modules:
        return sys.modules[name], sha, origin
    mod_spec = importlib.util.spec_from_file_location(name, origin)
    if mod_spec is None:
        raise InputError(f"mixin module {spec}: cannot be imported")
    module = importlib.util.module_from_spec(mod_spec)
    if package is not None:
        module.__package__ = package
    sys.modules[name] = module
    try:
        exec(compile(source, str(origin), "exec"), module.__dict__)  # noqa: S102 - the user registered these bytes
    except Exception as exc:
        del sys.modules[name]
        raise InputError(f"mixin module {spec} failed to import: {type(exc).__name__}: {exc}") from None
    return module, sha, origin


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


def _add(cat: Catalogue, spec: str, module: ModuleType) -> None:
    mixins, nodes = discover(module)
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


def registrations(paths: Paths) -> list[Registration]:
    """The modules registered in this home (nothing is run)."""
    f = _registry_file(paths)
    if not f.exists():
        return []
    try:
        data = json.loads(f.read_text())
        out = []
        for m in data.get("modules", []):
            if isinstance(m, str):   # written before hashes were recorded: listed, never run
                out.append(Registration(_name(m), m, "", ""))
            else:
                out.append(Registration(str(m["name"]), str(m["spec"]), str(m.get("origin", "")),
                                        str(m.get("sha256", "")), tuple(m.get("provides", ())),
                                        str(m.get("registered_at", ""))))
        return out
    except OSError as exc:
        raise StorageError(f"cannot read {f} ({exc.strerror})") from None
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise InputError(f"{f} is not a valid mixin module registry ({type(exc).__name__}: {exc}); "
                         "fix or delete it, then register the modules again") from None


def registered_modules(paths: Paths) -> list[str]:
    return [r.spec for r in registrations(paths)]


def _build(paths: Paths | None, candidate: tuple[str, ModuleType] | None = None,
           regs: list[Registration] | None = None) -> Catalogue:
    cat = Catalogue(dict(BUILTIN_MIXINS), dict(BUILTIN_NODES))
    for reg in regs if regs is not None else registrations(paths) if paths else []:
        if candidate is not None and reg.spec == candidate[0]:
            continue   # being registered again: the candidate's bytes replace it
        _add(cat, reg.spec, _load(reg.spec, reg)[0])
    if candidate is not None:
        _add(cat, *candidate)
    return cat


def load_catalogue(paths: Paths | None = None) -> Catalogue:
    """Built-ins plus this home's registered modules, each run only if its source still has the
    sha256 recorded at registration (else one clear error naming the fix)."""
    return _build(paths)


def _write(paths: Paths, regs: list[Registration]) -> None:
    f = _registry_file(paths)
    tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"version": REGISTRY_VERSION, "modules": [r.as_json() for r in regs]}, indent=2))
        os.replace(tmp, f)   # atomic: a reader sees the old registry or the new one
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {f} ({exc.strerror}): check that the kforge home is writable") from None


def _snapshot(paths: Paths) -> bytes | None:
    f = _registry_file(paths)
    try:
        return f.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {f} ({exc.strerror})") from None


def _restore(paths: Paths, snapshot: bytes | None) -> None:
    """Put the registry back as it was before a module ran (it may have written to it)."""
    if _snapshot(paths) == snapshot:
        return
    f = _registry_file(paths)
    try:
        if snapshot is None:
            f.unlink(missing_ok=True)
        else:
            tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp")
            tmp.write_bytes(snapshot)
            os.replace(tmp, f)
    except OSError as exc:
        raise StorageError(f"cannot restore {f} ({exc.strerror}): delete it and register your modules again") from None


@contextlib.contextmanager
def _lock(paths: Paths) -> Iterator[None]:
    """Registry changes one at a time (read, validate, write under one lock)."""
    path = _registry_file(paths).with_name("modules.lock")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(file_lock(path, exclusive=True, timeout_s=60.0))
        except OSError as exc:
            raise StorageError(f"cannot lock {path} ({exc.strerror}): check that the kforge home is writable") from None
        yield


def _normalise(spec: str) -> str:
    return str(Path(spec).expanduser().resolve()) if spec.endswith(".py") else spec


def register_module(paths: Paths, spec: str) -> Catalogue:
    """Validate a user module (file path or dotted name) and record it, with its sha256, for this home.

    The explicit command is the only way a module gets registered: a module that fails validation
    leaves the registry as it was. Registering a registered module again records its current bytes."""
    from datetime import UTC, datetime

    spec = _normalise(spec)
    with _lock(paths):
        current = registrations(paths)
        snapshot = _snapshot(paths)
        try:
            module, sha, origin = _load(spec, None)
            cat = _build(paths, (spec, module), current)
            name = next((r.name for r in current if r.spec == spec), _name(spec))
            clash = next((r for r in current if r.name == name and r.spec != spec), None)
            if clash is not None:
                raise InputError(f"a mixin module named {name} is already registered from {clash.spec}: "
                                 f"`kforge mixins unregister {name}` first, or rename {spec}")
        except BaseException:
            _restore(paths, snapshot)   # what the refused module wrote to the registry while it ran is undone
            raise
        old = next((r for r in current if r.spec == spec), None)
        if old is not None and old.sha256 == sha and old.origin == str(origin.resolve()):
            _restore(paths, snapshot)
            return cat
        provides = tuple(sorted(n for n, o in cat.origin.items() if o == spec))
        reg = Registration(name, spec, str(origin.resolve()), sha, provides, datetime.now(UTC).isoformat())
        # written from what was read before the module ran: anything it wrote to the registry is dropped
        _write(paths, [reg if r.spec == spec else r for r in current] if old else [*current, reg])
    return cat


def unregister_module(paths: Paths, name: str) -> Registration:
    """Forget a registered module (by name, or by the path or dotted name it was registered with); runs nothing."""
    with _lock(paths):
        current = registrations(paths)
        gone = find_registration(current, name)
        if gone is None:
            known = ", ".join(f"{r.name} ({r.spec})" for r in current) or "none"
            raise InputError(f"no registered mixin module {name!r}; registered: {known}")
        _write(paths, [r for r in current if r is not gone])
    return gone


def find_registration(regs: list[Registration], name: str) -> Registration | None:
    """The registration called ``name``, or registered as ``name`` (a path or dotted name)."""
    key = _normalise(name)
    return next((r for r in regs if name in (r.name, r.spec) or key == r.spec), None)
