"""Static traits read from the mixin and node classes themselves (source + AST), not from names.

For each class: which entry points it wraps (sync/async), which lifecycle hooks it defines and
whether they chain to ``super()``, the instance attributes it writes, the environment sinks it
touches (log, events, audit, store, pool...), whether it re-invokes the wrapped call in a loop,
short-circuits it, rewrites the request, catches broad exceptions, or uses threads.
"""

import ast
import inspect
import textwrap
from typing import Any

from kforge.mixins.components.base import Mixin, NodeBase

SINKS = ("log", "events", "audit", "store", "pool", "failures", "threads")
HOOKS = ("on_start", "on_stop")
ENTRY = ("process", "aprocess")


def _func_ast(fn: Any) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        src = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    node = ast.parse(src).body[0]
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _is_super_call(node: ast.AST, method: str | None = None) -> bool:
    """``super().m(...)`` or ``super(C, self).m(...)`` (optionally a specific method)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "super" and (method is None or node.func.attr == method))


def _self_attr_writes(fn_ast: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(fn_ast):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in targets:
            base = t.value if isinstance(t, ast.Subscript) else t
            if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "self":
                out.add(base.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "__dict__"
                and node.args and isinstance(node.args[0], ast.Constant)):
            out.add(str(node.args[0].value))
    return out


def _env_sinks(fn_ast: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(fn_ast):
        if (isinstance(node, ast.Attribute) and node.attr in SINKS and isinstance(node.value, ast.Attribute)
                and node.value.attr == "env"):
            out.add(node.attr)
    return out


def _entry_traits(fn_ast: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, bool]:
    args = [a.arg for a in fn_ast.args.args]
    param = args[1] if len(args) > 1 else ""
    super_calls = [n for n in ast.walk(fn_ast) if _is_super_call(n) and n.func.attr in ENTRY]  # type: ignore[attr-defined]
    in_loop = any(_is_super_call(n) for loop in ast.walk(fn_ast) if isinstance(loop, (ast.For, ast.While))
                  for n in ast.walk(loop))
    rewrites = any(c.args and not (isinstance(c.args[0], ast.Name) and c.args[0].id == param) for c in super_calls)
    returns = [n for n in ast.walk(fn_ast) if isinstance(n, ast.Return) and n.value is not None]
    short = bool(super_calls) and any(not any(_is_super_call(s) or (isinstance(s, ast.Name) and s.id == "out")
                                              for s in ast.walk(r)) for r in returns)
    broad = any(isinstance(h, ast.ExceptHandler) and (h.type is None or (isinstance(h.type, ast.Name)
                                                                          and h.type.id in ("Exception", "BaseException")))
                for h in ast.walk(fn_ast))
    post = False
    for stmt in fn_ast.body:
        if any(_is_super_call(n) for n in ast.walk(stmt)):
            idx = fn_ast.body.index(stmt)
            post = any(_env_sinks(s) or any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                                            and n.func.value.__class__ is ast.Name and getattr(n.func.value, "id", "") == "self"
                                            for n in ast.walk(s)) for s in fn_ast.body[idx + 1:])
            break
    nested_def = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in fn_ast.body)
    return {"calls_super": bool(super_calls) or nested_def, "reinvokes": in_loop, "rewrites_request": rewrites,
            "short_circuits": short, "catches_broad": broad, "acts_after_call": post}


def class_traits(cls: type) -> dict[str, Any]:
    """Traits of one mixin or node class, merged over its own MRO (minus Mixin/NodeBase/object)."""
    own = [c for c in cls.__mro__ if c not in (Mixin, NodeBase, object)]
    methods: set[str] = set()
    writes: set[str] = set()
    sinks: set[str] = set()
    hooks: dict[str, bool] = {}
    entry: dict[str, bool] = {}
    async_methods = 0
    raises: set[str] = set()
    threads = False
    lines = 0
    for c in reversed(own):
        for name, fn in vars(c).items():
            if not inspect.isfunction(fn) or name.startswith("__"):
                continue
            methods.add(name)
            fa = _func_ast(fn)
            if fa is None:
                continue
            lines += (fa.end_lineno or fa.lineno) - fa.lineno + 1
            writes |= _self_attr_writes(fa)
            sinks |= _env_sinks(fa)
            async_methods += isinstance(fa, ast.AsyncFunctionDef)
            threads |= any(isinstance(n, ast.Name) and n.id == "threading" for n in ast.walk(fa))
            raises |= {n.exc.func.id for n in ast.walk(fa) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)
                       and isinstance(n.exc.func, ast.Name)}
            if name in HOOKS:
                hooks[name] = any(_is_super_call(n, name) for n in ast.walk(fa))
            if name in ENTRY:
                for k, v in _entry_traits(fa).items():
                    entry[k] = entry.get(k, False) or v
    return {
        "name": cls.__name__,
        "category": getattr(cls, "category", "node"),
        "tags": list(getattr(cls, "tags", ())),
        "methods": sorted(methods),
        "n_methods": len(methods),
        "n_lines": lines,
        "wraps_sync": "process" in methods,
        "wraps_async": "aprocess" in methods,
        "async_methods": async_methods,
        "hooks": sorted(hooks),
        "n_hooks": len(hooks),
        "hook_breaks_chain": any(not chained for chained in hooks.values()),
        "state_writes": sorted(writes),
        "n_state_writes": len(writes),
        "sinks": sorted(sinks),
        "raises": sorted(raises),
        "uses_threads": threads,
        "has_invariants": "invariants" in methods or "node_invariants" in methods,
        "depends_on": sorted(c.__name__ for c in own[1:] if issubclass(c, Mixin)),
        "state_modifying": bool(getattr(cls, "state_modifying", False)) or bool(writes - {"env", "hooks_run"}),
        "side_effects": bool(getattr(cls, "side_effects", False)) or "store" in sinks,
        **{k: entry.get(k, False) for k in ("calls_super", "reinvokes", "rewrites_request", "short_circuits",
                                               "catches_broad", "acts_after_call")},
    }
