"""Parse Python tracebacks (plain CPython and IPython/Jupyter styles) into structured fields.

Handles ANSI colours, chained exceptions (the last one is the error), truncated tracebacks (the
exception type is then taken from the IPython header line) and extracts parameters: missing key,
attribute and object type, undefined name, missing module, file path, shapes, file and line.

Example::

    tb = parse_traceback(text)
    tb.exc_type, tb.message     # 'KeyError', "'price'"
    tb.params()                 # {'key': 'price', 'file': 'prog.py', 'line': 7, ...}
"""

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_IPY_FRAME = re.compile(r"^(?P<file>(?:<ipython-input-[\w-]+>|/\S+|[A-Za-z]:\\\S+|~\S+|\S+\.py))\s+in\s+(?P<func>[<\w>.]+)")
_CELL_FRAME = re.compile(r"^(?:Cell|Input) In\s*\[(?P<cell>[^\]]*)\],?\s*line (?P<line>\d+)")
_FILE_FRAME = re.compile(r"^File (?P<file>\S+?):(?P<line>\d+),?\s*in (?P<func>\S+)")
_ARROW = re.compile(r"^\s*-*>\s*(?P<line>\d+)\s?(?P<code>.*)$")
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|Iteration|error|Fault|"
                       r"NotFound|Invalid\w*|Exhausted|Timeout\w*|Failure))(?::\s?(?P<msg>.*))?$")
_HEADER = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)\s+Traceback \(most recent call last\)")
_SITE = re.compile(r"(site-packages|dist-packages)/(?P<lib>[A-Za-z_][\w]*)")


@dataclass(frozen=True)
class PyFrame:
    file: str
    line: int
    function: str
    code: str = ""
    library: str = ""      # top-level package when the frame is inside site-packages


_EXEC_COUNT = re.compile(r"^(?:Cell\[(\d+)\]|<ipython-input-(\d+)-)")


@dataclass
class PyError:
    exc_type: str = ""
    message: str = ""
    frames: list[PyFrame] = field(default_factory=list)
    chained: list[str] = field(default_factory=list)   # earlier exception types in the chain
    truncated: bool = False

    @property
    def short_type(self) -> str:
        return self.exc_type.rsplit(".", 1)[-1]

    @property
    def user_frame(self) -> PyFrame | None:
        """The last frame in the user's own code (not a library): the guilty frame."""
        for f in reversed(self.frames):
            if not f.library:
                return f
        return self.frames[-1] if self.frames else None

    @property
    def execution_count(self) -> int | None:
        """The notebook cell's execution counter of the first frame (``Cell In [N]``, ``<ipython-input-N-...>``), or
        None (a script, or a kernel that names cells by file). A small counter means a freshly started kernel."""
        for f in self.frames:
            m = _EXEC_COUNT.match(f.file)
            if m:
                return int(m.group(1) or m.group(2))
        return None

    @property
    def libraries(self) -> list[str]:
        seen: list[str] = []
        for f in self.frames:
            if f.library and f.library not in seen:
                seen.append(f.library)
        return seen

    def params(self) -> dict[str, Any]:
        out = extract_params(self.short_type, self.message)
        uf = self.user_frame
        if uf:
            out.update({"file": uf.file, "line": uf.line, "function": uf.function})
            if uf.code:
                out["code"] = uf.code
        if self.libraries:
            out["libraries"] = self.libraries
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PARAM_RX: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    ("NameError", re.compile(r"name '(?P<a>[^']+)' is not defined"), ("name",)),
    ("UnboundLocalError", re.compile(r"local variable '(?P<a>[^']+)'|cannot access local variable '(?P<b>[^']+)'"), ("name",)),
    ("AttributeError", re.compile(r"'(?P<a>[^']+)' object has no attribute '(?P<b>[^']+)'"), ("object_type", "attribute")),
    ("AttributeError", re.compile(r"module '(?P<a>[^']+)' has no attribute '(?P<b>[^']+)'"), ("module", "attribute")),
    ("AttributeError", re.compile(r"type object '(?P<a>[^']+)' has no attribute '(?P<b>[^']+)'"), ("object_type", "attribute")),
    ("KeyError", re.compile(r"^\s*['\"]?(?P<a>.*?)['\"]?\s*$"), ("key",)),
    ("ModuleNotFoundError", re.compile(r"No module named '(?P<a>[^']+)'"), ("module",)),
    ("ImportError", re.compile(r"cannot import name '(?P<a>[^']+)'(?: from '(?P<b>[^']+)')?"), ("name", "module")),
    ("FileNotFoundError", re.compile(r"No such file or directory: '(?P<a>[^']+)'|(?P<b>\S+) (?:not found|does not exist)"), ("path",)),
    ("IndexError", re.compile(r"index (?P<a>-?\d+) is out of bounds for axis (?P<b>\d+) with size (?P<c>\d+)"), ("index", "axis", "size")),
    ("TypeError", re.compile(r"unsupported operand type\(s\) for (?P<a>\S+): '(?P<b>[^']+)' and '(?P<c>[^']+)'"), ("operator", "left_type", "right_type")),
    ("TypeError", re.compile(r"'(?P<a>[^']+)' object is not (?P<b>\w+)"), ("object_type", "missing_protocol")),
    ("TypeError", re.compile(r"(?P<a>[\w.]+)\(\) (?:got an unexpected keyword argument|missing \d+ required positional argument[s]?:?) '?(?P<b>[^']+)'?"), ("callable", "argument")),
    ("TypeError", re.compile(r'can only concatenate (?P<a>\w+) \(not "(?P<b>\w+)"\)'), ("left_type", "right_type")),
    ("ValueError", re.compile(r"invalid literal for (?P<a>\w+)\(\) with base \d+: '(?P<b>[^']*)'"), ("callable", "value")),
    ("ValueError", re.compile(r"could not convert string to float: '(?P<a>[^']*)'"), ("value",)),
    ("", re.compile(r"shapes? \(?(?P<a>[\d, ]+)\)? and \(?(?P<b>[\d, ]+)\)? not aligned|"
                    r"size of tensor a \((?P<c>\d+)\) must match the size of tensor b \((?P<d>\d+)\)"), ("shape_a", "shape_b")),
]


def extract_params(exc_type: str, message: str) -> dict[str, Any]:
    """Parameters named by the exception message (missing key, attribute, object type, ...)."""
    out: dict[str, Any] = {}
    for typ, rx, names in _PARAM_RX:
        if typ and typ != exc_type:
            continue
        m = rx.search(message or "")
        if not m:
            continue
        vals = [v for v in m.groups()]
        # patterns with alternative groups: keep non-empty values in order
        filled = [v for v in vals if v is not None]
        for name, v in zip(names, filled, strict=False):
            out[name] = v
        if out:
            break
    return out


def _library(path: str) -> str:
    m = _SITE.search(path)
    if m:
        return m["lib"]
    m = re.search(r"/lib/python3[\d.]*/(?P<lib>[A-Za-z_]\w*)", path)
    return m["lib"] if m else ""


def parse_traceback(text: str) -> PyError:
    """Structured fields of the last exception in a traceback (never raises on odd input)."""
    lines = [_ANSI.sub("", x).rstrip() for x in (text or "").splitlines()]
    err = PyError()
    header = ""
    for ln in lines[:5]:
        m = _HEADER.match(ln.strip())
        if m:
            header = m["type"]
            break
    frames: list[PyFrame] = []
    cur: dict[str, Any] | None = None
    last_exc: tuple[str, str] | None = None
    exc_idx = -1

    def flush() -> None:
        nonlocal cur
        if cur is not None:
            frames.append(PyFrame(cur["file"], int(cur.get("line") or 0), cur.get("func", ""), cur.get("code", ""),
                                  _library(cur["file"])))
            cur = None

    for i, ln in enumerate(lines):
        s = ln.strip()
        if not s or set(s) <= {"-", "^", "~", " "}:
            continue
        if s.startswith("During handling of the above exception") or s.startswith("The above exception was the direct cause"):
            if last_exc:
                err.chained.append(last_exc[0])
            flush()
            frames = []
            continue
        m = _PY_FRAME.match(ln)
        if m:
            flush()
            cur = {"file": m["file"], "line": m["line"], "func": m["func"] or ""}
            continue
        m = _CELL_FRAME.match(s) or _FILE_FRAME.match(s)
        if m:
            flush()
            d = m.groupdict()
            cur = {"file": d.get("file") or f"Cell[{d.get('cell', '')}]", "line": d.get("line"), "func": d.get("func") or "<module>"}
            continue
        m = _IPY_FRAME.match(s)
        if m and not _EXC_LINE.match(s):
            flush()
            cur = {"file": m["file"], "line": 0, "func": m["func"]}
            continue
        m = _ARROW.match(ln)
        if m and cur is not None:
            cur["line"] = cur.get("line") or m["line"]
            cur["code"] = m["code"].strip()
            continue
        if cur is not None and "code" not in cur and ln.startswith(" ") and _PY_FRAME.match(lines[i - 1] if i else ""):
            cur["code"] = s
            continue
        m = _EXC_LINE.match(s)
        if m and not ln.startswith(" "):
            last_exc = (m["type"], (m["msg"] or "").strip())
            exc_idx = i
    flush()
    err.frames = frames
    if last_exc:
        err.exc_type, err.message = last_exc
        tail = [x for x in lines[exc_idx + 1:] if x.strip()]
        if tail and not any(_PY_FRAME.match(x) for x in tail):
            err.message = (err.message + " " + " ".join(t.strip() for t in tail[:3])).strip()
    if header and (not err.exc_type or err.exc_type.rsplit(".", 1)[-1] != header.rsplit(".", 1)[-1]):
        if not err.exc_type:
            err.truncated = True
        err.exc_type = header if not err.exc_type or err.truncated else err.exc_type
    return err
