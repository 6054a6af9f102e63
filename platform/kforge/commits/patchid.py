"""Patch ids in the spirit of ``git patch-id --stable``: a hash of a diff's changed lines with
whitespace, hunk headers, line numbers and file order removed, so the same change applied
elsewhere (a backport, a cherry-pick, a re-send) gets the same id."""

import hashlib

import polars as pl


def patch_id(diff: str) -> str:
    per_file: list[str] = []
    current: list[str] = []
    for line in diff.splitlines():
        if line.startswith("diff --git"):
            if current:
                per_file.append("\n".join(current))
            current = [line.split(" b/")[-1]]
        elif line.startswith(("+++", "---", "@@", "index ")):
            continue
        elif line[:1] in ("+", "-"):
            current.append(line[0] + "".join(line[1:].split()))
    if current:
        per_file.append("\n".join(current))
    if not any(len(f.splitlines()) > 1 for f in per_file):
        return ""
    h = hashlib.sha1()
    for f in sorted(per_file):
        h.update(hashlib.sha1(f.encode()).digest())
    return h.hexdigest()


def patch_ids(diffs: pl.Series) -> pl.Series:
    return diffs.map_elements(patch_id, return_dtype=pl.String).alias("patch_id")
