"""Which repository a path is, and the ``repositories`` table that keeps names apart.

A repository is identified by its top level (``git rev-parse --show-toplevel``; the git dir of a
bare clone), so ``repo/docs`` is ``repo``. Its name is, in order: ``--name``; the name it is
already registered under; the last part of its ``origin`` URL; its directory name. Two
repositories never share a name: a different history under a taken name is refused with a hint
to pass ``--name``, so histories never merge. A registered row is the same repository when its
path is the top level, or else when both origin URLs are known and equal, or else when the
first (root) commits agree, or, for rows written before identities were recorded, when the
name's stored commits contain this repository's first commit.

Example::

    ident = identify("/src/linux/Documentation")   # RepoIdentity(name='linux', toplevel=/src/linux, ...)
    claim(Warehouse(tmp_path / "w.duckdb"), ident)  # -> 'linux' (recorded in `repositories`)
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from kforge.errors import InputError
from kforge.git import gitcmd
from kforge.git.rows import now_utc
from kforge.storage import Warehouse
from kforge.storage import warehouse as wh

REPOS_TABLE = "repositories"
REPOS_SCHEMA: dict[str, Any] = {
    "repo": pl.String, "path": pl.String, "added_at": pl.Datetime("us", "UTC"),
    "remote": pl.String, "first_commit": pl.String,
}


@dataclass(frozen=True)
class RepoIdentity:
    name: str                  # --name, else derived from the origin URL or the directory
    toplevel: Path             # work-tree top level, or the git dir of a bare repository
    remote: str | None         # origin URL without credentials
    first_commit: str | None   # the smallest root commit reachable from the ref (None: no commits)
    explicit: bool = False     # the name was given by the user


def repo_name_for(path: Path) -> str:
    """A stable partition-friendly name: the directory name without ``.git``."""
    name = path.name[:-4] if path.name.endswith(".git") else path.name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "repo"


def remote_url(top: Path) -> str | None:
    """``remote.origin.url`` without any ``user:password@`` part, or None."""
    url = gitcmd.git(top, "config", "--get", "remote.origin.url", check=False).decode(errors="replace").strip()
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", url) or None


def _name_from_remote(url: str | None) -> str | None:
    if not url:
        return None
    last = re.split(r"[/:\\]", url.rstrip("/"))[-1]
    return repo_name_for(Path(last)) if last and last not in (".", "..", ".git") else None


def identify(path: str | Path, name: str | None = None, ref: str = "HEAD") -> RepoIdentity:
    """The identity of the repository containing ``path`` (raises NotARepositoryError)."""
    top = gitcmd.check_repository(path)
    head = gitcmd.resolve_ref(top, ref)
    roots = gitcmd.git(top, "rev-list", "--max-parents=0", head, check=False).decode().split() if head else []
    remote = remote_url(top)
    derived = _name_from_remote(remote) or repo_name_for(top)
    return RepoIdentity(name=name or derived, toplevel=top, remote=remote,
                        first_commit=min(roots) if roots else None, explicit=bool(name))


def _same(con: duckdb.DuckDBPyConnection, row: dict[str, Any], ident: RepoIdentity) -> bool:
    if row["path"] == str(ident.toplevel):
        return True
    if row.get("remote") and ident.remote:
        return bool(row["remote"] == ident.remote)
    if row.get("first_commit") or not ident.first_commit:
        return bool(row.get("first_commit")) and row["first_commit"] == ident.first_commit
    # a row from before identities were recorded: the same history if it holds our first commit
    if not wh.exists(con, "commits"):
        return False
    hit = con.execute("select count(*) from commits where repo = ? and sha = ?", [row["repo"], ident.first_commit])
    return bool(hit.fetchall()[0][0])  # type: ignore[index]


def claim(warehouse: Warehouse, ident: RepoIdentity) -> str:
    """Record ``ident`` in ``repositories`` and return the name its rows are stored under.

    Without an explicit name, a repository already registered keeps its name. Raises InputError
    when the name belongs to another repository, or when an explicit name would register a
    repository a second time under a new name. Check and write are one transaction.
    """
    with warehouse.writer() as con:
        rows = (wh.fetch(con, f"select * from {REPOS_TABLE}").to_dicts()
                if wh.exists(con, REPOS_TABLE) else [])
        same = sorted((r for r in rows if _same(con, r, ident)), key=lambda r: r["path"] != str(ident.toplevel))
        name = same[0]["repo"] if same and not ident.explicit else ident.name
        taken = next((r for r in rows if r["repo"] == name), None)
        if taken is not None and not _same(con, taken, ident):
            raise InputError(
                f"the repository name {name!r} is taken by another repository ({taken['path']}) with a different "
                f"history; {ident.toplevel} was not ingested. Pass --name NAME to store it under another name")
        if ident.explicit and same and name not in {r["repo"] for r in same}:
            raise InputError(
                f"{ident.toplevel} is already registered as {same[0]['repo']!r}; storing it again as {name!r} "
                f"would copy its history. Drop --name (or pass --name {same[0]['repo']})")
        if rows:
            con.execute(f"delete from {REPOS_TABLE} where repo = ?", [name])
        wh.append(con, REPOS_TABLE, pl.DataFrame(
            [{"repo": name, "path": str(ident.toplevel), "added_at": now_utc(), "remote": ident.remote,
              "first_commit": ident.first_commit}], schema=REPOS_SCHEMA))
    return name
