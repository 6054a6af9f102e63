"""How a training/generation example is laid out as tokens.

Message task: ``<diff> DIFF <sub> S <type> T <size> C <ctx> NEIGHBOUR-SUBJECTS <msg>`` then the
target ``subject\\n\\nbody<eos>``. Patch task: ``<issue> TEXT <sub> ... <ctx> NEIGHBOUR SUBJECT +
DIFF SKELETON <patch>`` then ``subject\\n\\nbody\\n---\\nDIFF SKELETON<eos>``. Only target tokens
carry loss. The marker strings are special tokens for the BPE backbone and plain text headers
for pretrained backbones (see ``Backbone.marker``).
"""

from dataclasses import dataclass
from typing import Any, Protocol

from kforge.generation import labels


class Codec(Protocol):
    eos_id: int

    def encode(self, text: str) -> list[int]: ...
    def marker(self, name: str) -> list[int]: ...


@dataclass
class Example:
    ids: list[int]
    n_prompt: int


def diff_view(diff: str, max_chars: int = 2000) -> str:
    """File headers, hunk headers and changed lines (context lines dropped)."""
    out = []
    for ln in diff.splitlines():
        if ln.startswith("diff --git"):
            out.append(ln)
        elif ln.startswith("@@"):
            out.append(ln.split("@@")[-1].strip() and "@@ " + ln.split("@@")[-1].strip() or "@@")
        elif ln[:1] in "+-" and not ln.startswith(("+++", "---")):
            out.append(ln[:160])
        if sum(len(x) + 1 for x in out) > max_chars:
            break
    return "\n".join(out)[:max_chars]


def diff_skeleton(diff: str, hunk_lines: int = 6, max_files: int = 3) -> str:
    """A unified-diff skeleton: per file its headers and the first lines of the first hunk."""
    out, files, in_hunk, taken = [], 0, False, 0
    for ln in diff.splitlines():
        if ln.startswith("diff --git"):
            files += 1
            if files > max_files:
                break
            in_hunk, taken = False, 0
            out.append(ln)
        elif ln.startswith(("--- ", "+++ ")) and not in_hunk:
            out.append(ln)
        elif ln.startswith("@@"):
            if in_hunk:
                in_hunk = None  # type: ignore[assignment]  # one hunk per file
                continue
            in_hunk, taken = True, 0
            out.append(ln)
        elif in_hunk is True and taken < hunk_lines:
            out.append(ln)
            taken += 1
    return "\n".join(out)


def _target_message(subject: str, body: str, max_body: int) -> str:
    body = (body or "").strip()[:max_body]
    return subject.strip() + ("\n\n" + body if body else "")


def message_prompt(codec: Codec, diff: str, l1: dict[str, Any], neighbours: list[str], budget: int) -> list[int]:
    tail = (codec.marker("<sub>") + codec.encode(" " + (l1.get("subsystem") or "")) +
            codec.marker("<type>") + codec.encode(" " + str(l1.get("change_type", ""))) +
            codec.marker("<size>") + codec.encode(" " + str(l1.get("complexity", ""))) +
            codec.marker("<ctx>") + codec.encode("\n".join(neighbours)[:400]) + codec.marker("<msg>"))
    diff_ids = codec.encode(diff_view(diff))[: max(budget - len(tail) - 1, 8)]
    return fit_prompt(codec.marker("<diff>") + diff_ids + tail, budget)


def patch_prompt(codec: Codec, issue: str, l1: dict[str, Any], neighbour: tuple[str, str] | None, budget: int) -> list[int]:
    ctx = ""
    if neighbour:
        ctx = neighbour[0] + "\n" + diff_skeleton(neighbour[1], hunk_lines=4, max_files=2)
    tail = (codec.marker("<sub>") + codec.encode(" " + (l1.get("subsystem") or "")) +
            codec.marker("<type>") + codec.encode(" " + str(l1.get("change_type", ""))) +
            codec.marker("<ctx>") + codec.encode(ctx)[:200] + codec.marker("<patch>"))
    issue_ids = codec.encode(issue.strip())[: max(budget - len(tail) - 1, 8)]
    return fit_prompt(codec.marker("<issue>") + issue_ids + tail, budget)


def fit_prompt(prompt: list[int], budget: int) -> list[int]:
    """Keep the first marker and the last ``budget - 1`` tokens (the conditioning and the task marker)."""
    return prompt if len(prompt) <= budget else prompt[:1] + prompt[len(prompt) - budget + 1:]


def gold_l1(row: dict[str, Any]) -> dict[str, Any]:
    return {"subsystem": row["prefix"], "change_type": row["change_type"], "complexity": row["complexity"]}


def message_example(codec: Codec, row: dict[str, Any], l1: dict[str, Any], neighbours: list[str], max_len: int,
                    max_target: int = 96, max_body: int = 400) -> Example:
    target = codec.encode(_target_message(row["subject"], row["body"], max_body))[:min(max_target, max_len // 2)] + [codec.eos_id]
    prompt = message_prompt(codec, row["diff"], l1, neighbours, max_len - len(target))
    return Example(prompt + target, len(prompt))


def patch_example(codec: Codec, row: dict[str, Any], l1: dict[str, Any], neighbour: tuple[str, str] | None,
                  max_len: int, max_target: int = 160) -> Example:
    text = _target_message(row["subject"], labels.strip_trailers(row["body"]), 200) + "\n---\n" + diff_skeleton(row["diff"])
    target = codec.encode(text)[:min(max_target, max_len // 2)] + [codec.eos_id]
    prompt = patch_prompt(codec, row["issue"], l1, neighbour, max_len - len(target))
    return Example(prompt + target, len(prompt))
