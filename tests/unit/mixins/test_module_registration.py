"""User mixin modules run only as registered: by explicit command, from the bytes whose sha256 was
recorded then. Each module here appends a line to a marker file when it runs, so every test can
say exactly when user code ran."""

import json
import os
from pathlib import Path

import pytest
from kforge.cli.main import main
from kforge.config import Paths
from kforge.errors import InputError
from kforge.mixins.catalogue import load_catalogue, register_module, registrations, unregister_module

MIXIN = '''
import pathlib
pathlib.Path({marker!r}).open("a").write("ran\\n")
from kforge.mixins.components.base import Mixin


class {cls}Mixin(Mixin):
    category = "infrastructure"

    def process(self, request):
        return super().process(request)
'''


def _module(path: Path, marker: Path, cls: str = "Memo", extra: str = "") -> Path:
    path.write_text(MIXIN.format(marker=str(marker), cls=cls) + extra)
    return path


def _runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def _builtin() -> set[str]:
    return set(load_catalogue().mixins)


@pytest.fixture()
def paths(kforge_home: Path) -> Paths:
    return Paths.of(kforge_home)


def test_registration_records_the_hash_and_later_commands_run_those_bytes(paths: Paths, tmp_path: Path):
    marker = tmp_path / "ran"
    mod = _module(tmp_path / "memo.py", marker)
    assert "Memo" in register_module(paths, str(mod)).mixins
    (reg,) = registrations(paths)
    assert reg.name == "memo" and reg.spec == str(mod.resolve()) and reg.provides == ("Memo",)
    import hashlib

    assert reg.sha256 == hashlib.sha256(mod.read_bytes()).hexdigest()
    assert "Memo" in load_catalogue(paths).mixins


@pytest.mark.parametrize("change", ["appended", "whitespace", "replaced_by_symlink", "deleted", "made_a_directory"])
def test_a_module_changed_after_registration_is_refused_before_it_runs(paths: Paths, tmp_path: Path, change: str):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    runs = _runs(marker)
    if change == "appended":
        mod.write_text(mod.read_text() + "import os\nos.system('echo owned')\n")
    elif change == "whitespace":
        mod.write_text(mod.read_text() + "\n")
    elif change == "replaced_by_symlink":
        other = _module(tmp_path / "other.py", marker, extra="# other\n")
        mod.unlink()
        mod.symlink_to(other)
    elif change == "deleted":
        mod.unlink()
    else:
        mod.unlink()
        mod.mkdir()
    with pytest.raises(InputError, match="changed since it was registered|now resolves to|no such file"):
        load_catalogue(paths)
    assert _runs(marker) == runs                       # nothing of the changed module ran


def test_an_unchanged_touch_still_runs(paths: Paths, tmp_path: Path):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    os.utime(mod, (1, 1))                              # same bytes, new mtime: still the registered module
    assert "Memo" in load_catalogue(paths).mixins


@pytest.mark.parametrize("extra,error", [
    ("x = 1\n", "defines no Mixin"),
    ("raise RuntimeError('refuse me')\n", "failed to import"),
    ("def broken(:\n", "failed to import: SyntaxError"),
    ("class IdleMixin(Mixin):\n    pass\n", "wraps neither"),
    ("class CachingMixin(Mixin):\n    def process(self, r):\n        return super().process(r)\n", "already defined"),
])
def test_a_refused_registration_leaves_nothing_runnable(paths: Paths, tmp_path: Path, extra: str, error: str):
    marker, mod = tmp_path / "ran", tmp_path / "bad.py"
    if extra == "x = 1\n":
        mod.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).open('a').write('ran\\n')\n{extra}")
    else:
        _module(mod, marker, cls="Fine", extra=extra)
    with pytest.raises(InputError, match=error):
        register_module(paths, str(mod))
    runs = _runs(marker)                               # validating it had to run it (the explicit command)
    assert registrations(paths) == []
    assert set(load_catalogue(paths).mixins) == _builtin()
    assert main(["--home", str(paths.home), "mixins", "catalogue"]) == 0
    assert _runs(marker) == runs                       # and nothing runs it again


SELF_REGISTERING = """
import hashlib, json, pathlib
pathlib.Path({marker!r}).open("a").write("ran\\n")
me = pathlib.Path(__file__).resolve()
registry = pathlib.Path({registry!r})
registry.parent.mkdir(parents=True, exist_ok=True)
forged = {{"name": "sneaky", "spec": str(me), "origin": str(me), "sha256": hashlib.sha256(me.read_bytes()).hexdigest(),
          "provides": ["Sneaky"], "registered_at": ""}}
registry.write_text(json.dumps({{"modules": [{entry}]}}))
{tail}
"""


@pytest.mark.parametrize("entry", ["str(me)", "forged"])
@pytest.mark.parametrize("outcome", ["refused", "accepted"])
def test_a_module_cannot_register_itself_while_it_is_validated(paths: Paths, tmp_path: Path, entry: str,
                                                                outcome: str):
    """Validating a module runs it; what it writes to the registry then is undone (refused) or dropped."""
    marker, mod = tmp_path / "ran", tmp_path / "sneaky.py"
    tail = ("raise RuntimeError('refuse me')" if outcome == "refused" else
            "from kforge.mixins.components.base import Mixin\n\n\nclass SneakyMixin(Mixin):\n"
            "    def process(self, request):\n        return super().process(request)\n")
    mod.write_text(SELF_REGISTERING.format(marker=str(marker), registry=str(paths.home / "mixins" / "modules.json"),
                                           entry=entry, tail=tail))
    if outcome == "refused":
        with pytest.raises(InputError, match="failed to import"):
            register_module(paths, str(mod))
        assert registrations(paths) == []
        assert set(load_catalogue(paths).mixins) == _builtin()
    else:
        register_module(paths, str(mod))
        (reg,) = registrations(paths)
        assert reg.name == "sneaky" and reg.registered_at     # kforge's own record, not the forged one
    assert _runs(marker) == 1                               # ran once: when the user asked to register it


def test_a_refused_re_registration_keeps_the_old_hash_and_runs_nothing(paths: Paths, tmp_path: Path):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    before = registrations(paths)
    mod.write_text(mod.read_text() + "raise RuntimeError('now broken')\n")
    with pytest.raises(InputError, match="failed to import"):
        register_module(paths, str(mod))
    assert registrations(paths) == before
    runs = _runs(marker)
    with pytest.raises(InputError, match="changed since it was registered"):
        load_catalogue(paths)
    assert _runs(marker) == runs


@pytest.mark.parametrize("how", ["name", "absolute path", "relative path"])
def test_unregister_then_use(paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    monkeypatch.chdir(tmp_path)
    gone = unregister_module(paths, {"name": "memo", "absolute path": str(mod), "relative path": "memo.py"}[how])
    assert gone.provides == ("Memo",) and registrations(paths) == []
    runs = _runs(marker)
    cat = load_catalogue(paths)
    with pytest.raises(InputError, match="unknown mixin"):
        cat.canonical("Memo")
    assert _runs(marker) == runs
    with pytest.raises(InputError, match="no registered mixin module 'memo'; registered: none"):
        unregister_module(paths, "memo")


def test_unregister_forgets_a_changed_module_without_running_it(paths: Paths, tmp_path: Path):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    mod.write_text(mod.read_text() + "# changed\n")
    runs = _runs(marker)
    unregister_module(paths, "memo")
    assert set(load_catalogue(paths).mixins) == _builtin() and _runs(marker) == runs


def test_register_twice(paths: Paths, tmp_path: Path):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    first = registrations(paths)
    register_module(paths, str(mod))                   # unchanged: one entry, as it was
    assert registrations(paths) == first
    mod.write_text(mod.read_text() + "# reviewed change\n")
    register_module(paths, str(mod))                   # changed, registered again by the user: new hash
    (again,) = registrations(paths)
    assert again.name == "memo" and again.sha256 != first[0].sha256
    assert "Memo" in load_catalogue(paths).mixins
    (tmp_path / "elsewhere").mkdir()
    twin = _module(tmp_path / "elsewhere" / "memo.py", marker, cls="Twin")
    with pytest.raises(InputError, match="named memo is already registered"):
        register_module(paths, str(twin))
    assert [r.spec for r in registrations(paths)] == [str(mod.resolve())]


def test_a_registry_written_before_hashes_is_not_run(paths: Paths, tmp_path: Path):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    f = paths.home / "mixins" / "modules.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"modules": [str(mod)]}))
    with pytest.raises(InputError, match="registered before kforge recorded hashes"):
        load_catalogue(paths)
    assert _runs(marker) == 0
    unregister_module(paths, str(mod))
    assert registrations(paths) == []


def test_a_hand_written_registry_entry_runs_nothing(paths: Paths, tmp_path: Path):
    """Editing modules.json to point at other code is the same as changing the module."""
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    register_module(paths, str(mod))
    evil = _module(tmp_path / "evil.py", marker, cls="Evil")
    f = paths.home / "mixins" / "modules.json"
    data = json.loads(f.read_text())
    data["modules"][0].update(spec=str(evil), origin=str(evil))
    f.write_text(json.dumps(data))
    runs = _runs(marker)
    with pytest.raises(InputError, match="changed since it was registered"):
        load_catalogue(paths)
    assert _runs(marker) == runs


def test_a_dotted_module_is_hashed_from_its_source(paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    marker = tmp_path / "ran"
    pkg = tmp_path / "site" / "userpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    mod = _module(pkg / "dotted_memo.py", marker, cls="Dotted")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    register_module(paths, "userpkg.dotted_memo")
    (reg,) = registrations(paths)
    assert reg.name == "userpkg.dotted_memo" and reg.origin == str(mod.resolve())
    assert "Dotted" in load_catalogue(paths).mixins
    mod.write_text(mod.read_text() + "# changed\n")
    runs = _runs(marker)
    with pytest.raises(InputError, match="changed since it was registered"):
        load_catalogue(paths)
    assert _runs(marker) == runs


def test_cli_register_unregister_and_one_error_line(paths: Paths, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    marker, mod = tmp_path / "ran", tmp_path / "memo.py"
    _module(mod, marker)
    home = str(paths.home)
    assert main(["--home", home, "mixins", "register", str(mod)]) == 0
    assert capsys.readouterr().out.startswith("registered: memo (")
    assert main(["--home", home, "mixins", "register", str(mod)]) == 0
    assert capsys.readouterr().out.startswith("already registered: memo")
    mod.write_text(mod.read_text() + "# changed\n")
    assert main(["--home", home, "mixins", "catalogue"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kforge: error: mixin module memo") and len(err.strip().splitlines()) == 1
    assert main(["--home", home, "mixins", "unregister", "memo"]) == 0
    assert "unregistered memo" in capsys.readouterr().out
    assert main(["--home", home, "mixins", "unregister", "memo"]) == 2
    assert capsys.readouterr().err.startswith("kforge: error: no registered mixin module 'memo'")
    assert main(["--home", home, "mixins", "catalogue"]) == 0
