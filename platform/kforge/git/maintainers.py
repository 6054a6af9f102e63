"""Parse a kernel-style MAINTAINERS file: sections with M: (maintainer) and F: (file pattern)."""

import re
from pathlib import Path

import polars as pl

from kforge.git.gitcmd import git
from kforge.git.subsystems import SubsystemRules

_EMAIL = re.compile(r"<([^>]+)>")


def parse_maintainers(text: str, repo: str, rules: SubsystemRules) -> pl.DataFrame:
    rows = []
    section = ""
    people: list[tuple[str, str]] = []
    patterns: list[str] = []

    def flush() -> None:
        for name, email in people:
            for pat in patterns or [""]:
                probe = pat.rstrip("*").rstrip("/") + "/x.c" if pat.endswith("/") or pat.endswith("*") else pat
                rows.append({"repo": repo, "section": section, "name": name, "email": email,
                             "pattern": pat, "subsystem": rules.of(probe) if pat else ""})

    for line in text.splitlines():
        if re.match(r"^[A-Z]:\s", line):
            tag, value = line[0], line[2:].strip()
            if tag == "M":
                m = _EMAIL.search(value)
                if m:
                    people.append((value.split("<")[0].strip(), m.group(1).lower()))
            elif tag == "F":
                patterns.append(value)
        elif line.strip() and not line.startswith(("\t", " ")):
            flush()
            section, people, patterns = line.strip(), [], []
    flush()
    schema = {"repo": pl.String, "section": pl.String, "name": pl.String, "email": pl.String,
              "pattern": pl.String, "subsystem": pl.String}
    return pl.DataFrame(rows, schema=schema)


def maintainers_at_head(repo_path: Path, repo: str, rules: SubsystemRules) -> pl.DataFrame:
    """The MAINTAINERS file at HEAD, parsed (empty frame when the repository has none)."""
    text = git(repo_path, "show", "HEAD:MAINTAINERS", check=False).decode(errors="replace")
    return parse_maintainers(text, repo, rules)
