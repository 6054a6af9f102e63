"""Scrub personal data and secrets from crash logs, tracebacks and feedback text before they are stored.

The rules are data (``data/anonymize.json``, like the healing rules): each has a ``name``, a
``pattern`` (only its group named ``value`` is replaced, when it has one), a ``replacement``
(``{n}`` numbers the distinct values of one document, so the same e-mail address is ``<email-1>``
everywhere in it), ``keep`` (regexes; a value that fully matches one stays) and an optional
``check`` (``ip``: a valid address; ``entropy``: what :func:`secret_part` leaves has ``min_length``
characters, ``min_bits`` of Shannon entropy per character and ``min_switches`` of
:func:`class_switches`). Rules run in order, each on the previous one's output.

What goes: e-mail addresses, user names in home paths, IP and MAC addresses, host names, URL
credentials, API keys and tokens (GitHub, AWS, Slack, OpenAI, Google, JWT, Bearer, ``password=``...),
other high-entropy strings, and whatever a user adds. What stays: exception types, messages,
kernel symbols and offsets (``ext4_fill_super+0x1a/0x40``), raw kernel pointers and other pure
hex (not personal, and they drive crash classification), file names and line numbers, sanitizer
banners, version strings.

User rules (same format, ``{"rules": [...]}``) come from ``--rules FILE`` and from
``<KFORGE_HOME>/anonymize.json``; they run before the defaults, on the raw text.

Example::

    anon = Anonymizer.default()
    anon.scrub("File \\"/home/alice/p/train.py\\", line 3 ... alice@corp.com").text
    # 'File "/home/<user>/p/train.py", line 3 ... <email-1>'
"""

import gzip
import ipaddress
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from kforge.errors import InputError
from kforge.jsonl import read_jsonl

HOME_RULES = "anonymize.json"   # user rules in the kforge home
CHECKS = ("", "ip", "entropy")


@dataclass(frozen=True)
class ScrubRule:
    """One anonymiser rule, compiled once when it is loaded."""

    name: str
    pattern: str
    replacement: str
    keep: tuple[str, ...] = ()
    check: str = ""
    min_bits: float = 0.0
    min_switches: float = 0.0
    min_length: int = 0
    ignore_case: bool = False
    source: str = ""
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    keep_regex: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flags = re.MULTILINE | (re.IGNORECASE if self.ignore_case else 0)
        object.__setattr__(self, "regex", re.compile(self.pattern, flags))
        object.__setattr__(self, "keep_regex", tuple(re.compile(k) for k in self.keep))


def _rule(d: Any, where: str, source: str) -> ScrubRule:
    if not isinstance(d, dict):
        raise InputError(f"{where}: a rule must be an object with name, pattern and replacement")
    name = str(d.get("name") or "").strip()
    if not name:
        raise InputError(f"{where}: missing 'name'")
    where = f"{where} {name!r}"
    pattern, replacement = d.get("pattern"), d.get("replacement", f"<{name}-{{n}}>")
    if not isinstance(pattern, str) or not pattern:
        raise InputError(f"{where}: missing or empty 'pattern'")
    if not isinstance(replacement, str):
        raise InputError(f"{where}: 'replacement' must be a string")
    keep = d.get("keep") or []
    if isinstance(keep, str):
        keep = [keep]
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise InputError(f"{where}: 'keep' must be a list of regexes")
    check = str(d.get("check") or "")
    if check not in CHECKS:
        raise InputError(f"{where}: check must be one of ip, entropy, got {check!r}")
    try:
        limits = (float(d.get("min_bits", 0.0)), float(d.get("min_switches", 0.0)), int(d.get("min_length", 0)))
    except (TypeError, ValueError):
        raise InputError(f"{where}: min_bits, min_switches and min_length must be numbers") from None
    try:
        return ScrubRule(name, pattern, replacement, tuple(keep), check, *limits, bool(d.get("ignore_case")), source)
    except re.error as exc:
        raise InputError(f"{where}: invalid regex: {exc}") from None


def load_scrub_rules(path: str | Path) -> tuple[list[ScrubRule], tuple[str, ...]]:
    """The rules of one file and its top-level ``keep`` regexes (a bare list of rules is accepted)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such anonymiser rule file")
    try:
        data = json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a valid JSON rule file ({exc.msg}, line {exc.lineno})") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"{path}: expected {{\"rules\": [{{\"name\", \"pattern\", \"replacement\"}}, ...]}}")
    keep = data.get("keep", []) if isinstance(data, dict) else []
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise InputError(f"{path}: top-level 'keep' must be a list of regexes")
    rules = [_rule(d, f"{path}[{i}]", path.name) for i, d in enumerate(items)]
    dup = sorted({r.name for r in rules if sum(x.name == r.name for x in rules) > 1})
    if dup:
        raise InputError(f"{path}: duplicate rule names: {', '.join(dup)}")
    return rules, tuple(keep)


def default_rules_file() -> Path:
    return Path(str(resources.files("kforge.healing") / "data" / "anonymize.json"))


@lru_cache(maxsize=1)
def _default() -> tuple[tuple[ScrubRule, ...], tuple[str, ...]]:
    rules, keep = load_scrub_rules(default_rules_file())
    return tuple(rules), keep


def entropy_bits(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def class_switches(text: str) -> float:
    """Share of adjacent character pairs that change between lower case, upper case and digit
    (random base62 strings: about 0.6; identifiers and words: below 0.3)."""
    kinds = ["l" if c.islower() else "u" if c.isupper() else "d" for c in text if c.isalnum()]
    pairs = len(kinds) - 1
    return sum(a != b for a, b in zip(kinds, kinds[1:], strict=False)) / pairs if pairs > 0 else 0.0


_PIECES = re.compile(r"[/+=_.-]")
_PLAIN = re.compile(r"(?:0x)?[0-9a-fA-F]+|g[0-9a-f]{7,40}|\d+|[a-z]+|[A-Z]+|[A-Z][a-z]+")


def secret_part(value: str) -> str:
    """What is left of ``value`` once its plain pieces (hex, git-describe hashes, numbers, words) are set aside."""
    return "".join(p for p in _PIECES.split(value) if p and not _PLAIN.fullmatch(p))


def _passes(rule: ScrubRule, value: str) -> bool:
    if rule.check == "ip":
        try:
            ipaddress.ip_address(value.split("%", 1)[0])
        except ValueError:
            return False
        return True
    if rule.check == "entropy":
        rest = secret_part(value)
        return (len(rest) >= rule.min_length and any(c.isdigit() for c in rest) and any(c.isalpha() for c in rest)
                and entropy_bits(rest) >= rule.min_bits and class_switches(rest) >= rule.min_switches)
    return True


@dataclass
class Scrubbed:
    """An anonymised text and how many values each rule replaced."""

    text: str
    counts: Counter[str]


class Document:
    """The placeholders of one document (the same value gets the same number) and what each rule replaced."""

    def __init__(self) -> None:
        self.numbers: dict[str, dict[str, int]] = {}
        self.counts: Counter[str] = Counter()

    def placeholder(self, rule: ScrubRule, value: str) -> str:
        if "{n}" not in rule.replacement:
            return rule.replacement
        seen = self.numbers.setdefault(rule.replacement, {})
        return rule.replacement.replace("{n}", str(seen.setdefault(value, len(seen) + 1)))


class Anonymizer:
    """Applies scrub rules in order. Build it once and reuse it (rules are compiled on load)."""

    def __init__(self, rules: Sequence[ScrubRule], keep: Sequence[str] = ()) -> None:
        self.rules = tuple(rules)
        self.keep = tuple(keep)
        self._keep = tuple(re.compile(k) for k in keep)

    @classmethod
    def default(cls, extra: Iterable[str | Path] = (), home: str | Path | None = None) -> "Anonymizer":
        """The shipped rules, after the user's: the ``extra`` rule files, then ``<home>/anonymize.json``."""
        rules, keep = _default()
        files = [Path(p) for p in extra]
        if home is not None and (Path(home) / HOME_RULES).is_file():
            files.append(Path(home) / HOME_RULES)
        user: list[ScrubRule] = []
        user_keep: list[str] = []
        for f in files:
            r, k = load_scrub_rules(f)
            user += r
            user_keep += k
        return cls([*user, *rules], [*keep, *user_keep])

    def _kept(self, rule: ScrubRule, value: str) -> bool:
        return (any(k.fullmatch(value) for k in (*self._keep, *rule.keep_regex))
                or not _passes(rule, value))

    def scrub(self, text: str, doc: Document | None = None) -> Scrubbed:
        """``text`` with every rule's values replaced (``doc`` shares placeholders across texts)."""
        doc = doc or Document()
        for rule in self.rules:
            has_value = "value" in rule.regex.groupindex

            def swap(m: re.Match[str], rule: ScrubRule = rule, has_value: bool = has_value) -> str:
                if has_value and m.group("value") is None:
                    return m.group(0)
                value = m.group("value") if has_value else m.group(0)
                if not value or self._kept(rule, value):
                    return m.group(0)
                doc.counts[rule.name] += 1
                if not has_value:
                    return doc.placeholder(rule, value)
                start, end = m.span("value")
                whole = m.group(0)
                return whole[:start - m.start()] + doc.placeholder(rule, value) + whole[end - m.start():]

            text = rule.regex.sub(swap, text)
        return Scrubbed(text, doc.counts)

    def scrub_text(self, text: str) -> str:
        return self.scrub(text).text

    def scrub_fields(self, row: dict[str, Any], fields: Iterable[str]) -> tuple[dict[str, Any], Counter[str]]:
        """A copy of ``row`` with its string ``fields`` scrubbed, as one document (shared placeholders)."""
        doc = Document()
        out = dict(row)
        for f in fields:
            if isinstance(out.get(f), str) and out[f]:
                out[f] = self.scrub(out[f], doc).text
        return out, doc.counts


TEXT_FIELDS = ("log", "traceback", "report", "text")   # the raw-error fields of healing rows (features.raw_text)


@dataclass(frozen=True)
class FileReport:
    """What :func:`anonymize_file` did: documents written (rows, or 1 for a text file) and replacements per rule."""

    documents: int
    counts: Counter[str]
    jsonl: bool


def is_jsonl(path: str | Path) -> bool:
    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


def anonymize_file(src: str | Path, dst: str | Path, anonymizer: Anonymizer | None = None,
                   fields: Sequence[str] = TEXT_FIELDS, jsonl: bool | None = None) -> FileReport:
    """Write an anonymised copy of ``src`` to ``dst`` (whole, or not at all: a temp file is renamed).

    JSONL (``.jsonl``/``.ndjson``, optionally ``.gz``): each row is one document and its ``fields``
    are scrubbed; other files are one text document."""
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    anon = anonymizer or Anonymizer.default()
    jsonl = is_jsonl(src) if jsonl is None else jsonl
    total: Counter[str] = Counter()
    if jsonl:
        lines = []
        for _, row in read_jsonl(src):
            clean, counts = anon.scrub_fields(row, fields)
            total.update(counts)
            lines.append(json.dumps(clean, ensure_ascii=False, default=str))
        out, docs = "".join(line + "\n" for line in lines), len(lines)
    else:
        try:
            raw = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
        except (OSError, EOFError) as exc:
            raise InputError(f"{src}: cannot read ({exc})") from None
        scrubbed = anon.scrub(raw.decode("utf-8", errors="replace"))
        out, docs = scrubbed.text, 1
        total.update(scrubbed.counts)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(out)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return FileReport(docs, total, jsonl)
