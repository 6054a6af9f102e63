"""Inference: ``kforge generate message|patch``. Output is a ``git format-patch``-style text with
the predicted subsystem, a calibrated confidence and the retrieved neighbours used as context.
The drafted diff is text only: it is never applied or executed here."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kforge.errors import InputError
from kforge.generation import evaluate
from kforge.generation.adapters import adapter_for
from kforge.generation.bundle import Bundle
from kforge.generation.labels import diff_paths
from kforge.generation.patch_repair import ReadFile, repair_patch


@dataclass
class Generated:
    text: str
    subsystem: str
    subsystem_conf: float
    confidence: float | None   # calibrated for messages; None for patches (the calibrator never saw a patch draft)
    neighbours: list[str]
    adapter: str


def read_diff(path: str | Path) -> str:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    text = p.read_text(errors="replace")
    if "diff --git" not in text and not text.lstrip().startswith("---"):
        raise InputError(f"{p} does not look like a unified diff (no 'diff --git' header); "
                         "make one with `git diff` or `git format-patch`")
    return text


def _format_patch(subject: str, body: str, diff: str, sub: str, sub_conf: float, conf: float | None,
                  neighbours: list[str], source: str, adapter: str) -> str:
    date = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    files = diff_paths(diff)
    nb = "\n".join(f"  {i + 1}. {n}" for i, n in enumerate(neighbours)) or "  (none)"
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: kforge <kforge@localhost>\nDate: {date}\nSubject: [PATCH] {subject}\n"
            f"X-Kforge-Subsystem: {sub or '(unknown)'} (p={sub_conf:.2f})\n"
            f"X-Kforge-Confidence: {'n/a' if conf is None else f'{conf:.3f}'}\nX-Kforge-Model: {source}; adapter={adapter}\n\n"
            f"{body.strip()}\n\n"
            f"Retrieved neighbours (context):\n{nb}\n---\n"
            + (f" {len(files)} file(s) changed\n\n" if files else "\n") + (diff.rstrip() + "\n" if diff.strip() else "")
            + "-- \nkforge (generated draft; review before use)\n")


def generate_message(bundle: Bundle, diff: str, source: str = "", max_new_tokens: int = 96) -> Generated:
    l1 = bundle.level1.predict(diffs=[diff])[0]
    backbone, adapter = adapter_for(bundle.backbone, bundle.adapters_dir, _family(l1["subsystem"]))
    d = evaluate.draft_messages(backbone, bundle.level1, bundle.index, [diff], max_new_tokens=max_new_tokens)
    text = d.texts[0]
    subject, _, body = text.partition("\n")
    conf = evaluate.confidence(bundle.confidence, d.mean_logprob[0])
    out = _format_patch(subject.strip() or "(empty)", body, diff, l1["subsystem"], l1["subsystem_conf"], conf,
                        d.neighbours[0], source, adapter)
    return Generated(out, l1["subsystem"], l1["subsystem_conf"], conf, d.neighbours[0], adapter)


def generate_patch(bundle: Bundle, issue: str, subsystem: str | None = None, source: str = "",
                   max_new_tokens: int = 200, read_file: ReadFile | None = None) -> Generated:
    """``read_file`` (e.g. :func:`~kforge.generation.patch_repair.tree_reader`): anchor the drafted
    hunks in that tree and drop the ones it does not contain (see ``patch_repair``)."""
    if not issue.strip():
        raise InputError("--issue must not be empty")
    l1 = bundle.level1.predict(issues=[issue])[0]
    sub = subsystem or l1["subsystem"]
    backbone, adapter = adapter_for(bundle.backbone, bundle.adapters_dir, _family(sub))
    d = evaluate.draft_patches(backbone, bundle.level1, bundle.index, [issue], [subsystem], max_new_tokens)
    text = d.texts[0]
    message, _, skeleton = text.partition("\n---\n")
    if read_file is not None:
        skeleton, st = repair_patch(skeleton, read_file)
        note = f"hunks anchored in the tree: {st.kept} of {st.hunks}" + (f" ({'; '.join(st.reasons)})" if st.reasons else "")
        message += f"\n\n[{note}]"
    subject, _, body = message.partition("\n")
    # no confidence: the bundle's calibrator maps message drafts' log-probabilities to "acceptable
    # subject"; a patch draft's log-probability (message and diff) is not what it was fitted on
    out = _format_patch(subject.strip() or "(empty)", body, skeleton, sub, 1.0 if subsystem else l1["subsystem_conf"],
                        None, d.neighbours[0], source, adapter)
    return Generated(out, sub, 1.0 if subsystem else l1["subsystem_conf"], None, d.neighbours[0], adapter)


def generate_hunk(bundle: Bundle, issue: str, path: str, line: int, read_file: ReadFile, source: str = "",
                  subsystem: str | None = None) -> Generated:
    """The focused patch task as users meet it (:mod:`~kforge.generation.patch_task`): the LM writes one
    hunk of ``path`` against a window of that file's pre-image around ``line`` (1-based), read from the
    tree of ``read_file``; the hunk is then anchored in that tree (``patch_repair``)."""
    from kforge.generation import patch_task

    if not issue.strip():
        raise InputError("--issue must not be empty")
    text = read_file(path)
    if text is None:
        raise InputError(f"{path}: no such file in the given revision of --repo")
    lines = text.splitlines()
    if not 1 <= line <= max(len(lines), 1):
        raise InputError(f"--line {line} is outside {path} (1..{len(lines)})")
    start = max(1, min(line - patch_task.WINDOW // 2, len(lines) - patch_task.WINDOW + 1))
    window = lines[start - 1:start - 1 + patch_task.WINDOW]
    l1 = bundle.level1.predict(issues=[issue])[0]
    sub = subsystem or l1["subsystem"]
    backbone, adapter = adapter_for(bundle.backbone, bundle.adapters_dir, _family(sub))
    item = patch_task.TaskItem("", "", "", issue.strip()[:400], patch_task.Hunk(path, start, 0, ""), start, window)
    hunk = patch_task.draft(backbone, [item], batch_size=1)[0]
    diff, st = repair_patch(patch_task.as_patch(path, hunk), read_file)
    note = (f"one hunk of {path} drafted against lines {start}-{start + len(window) - 1} of the tree; "
            f"hunks anchored in the tree: {st.kept} of {st.hunks}" + (f" ({'; '.join(st.reasons)})" if st.reasons else ""))
    subject = issue.strip().splitlines()[0][:72]
    conf = 1.0 if subsystem else l1["subsystem_conf"]
    out = _format_patch(subject, f"[{note}]", diff, sub, conf, None, [], source, adapter)
    return Generated(out, sub, conf, None, [], adapter)


def _family(prefix: str) -> str:
    from kforge.generation.labels import family

    return family(prefix)
