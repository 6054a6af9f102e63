"""An LLM backend as an alternative level 2: one commit subject line per diff, drafted by a chat model
(:mod:`kforge.llm`) from the same conditioning the TinyLM gets.

The prompt holds level 1's labels (subsystem, change type, size), the subjects of the retrieved
neighbours and a bounded view of the diff (:func:`kforge.generation.prompts.diff_view`: paths, hunk
headers and changed lines). The first line of the answer, unquoted, is the subject. An empty answer
falls back to NNGen's subject (the best neighbour's), and the draft's provenance says so.

Like for like with the TinyLM (:mod:`kforge.generation.evaluate`): pass level 1's predictions with
``force_prefix=True`` (the subject then starts with level 1's ``prefix:``, as the served TinyLM's
does) and neighbours retrieved with the subsystem bonus; or blank the subsystem and retrieve without
it, ``force_prefix=False``, for the pair where neither system is given level 1's prefix. Example::

    backend = make_backend(LLMConfig())
    drafts = draft(backend, level1.predict(diffs=diffs), [[n.subject for n in nb] for nb in nbs], diffs)
    drafts.subjects, drafts.provenance[0]["template_hash"], drafts.provenance[0]["fallback"]
"""

from dataclasses import dataclass, field
from typing import Any

from kforge.errors import InputError
from kforge.generation import prompts
from kforge.generation.evaluate import with_prefix
from kforge.llm.base import Backend, GenParams, PromptTemplate, ask

DIFF_CHARS = 700      # the diff view's bound: paths and the first changed lines
NEIGHBOUR_CHARS = 160  # per neighbour subject
NOT_GIVEN = "(not given)"

SUBJECT_TEMPLATE = PromptTemplate(
    "commit_subject_l2",
    system="You write git commit subject lines in the style of the project. Answer with the subject line only.",
    user=("Subsystem: {subsystem}\nChange type: {change_type}\nSize: {complexity}\n"
          "Subjects of similar past commits:\n{neighbours}\n"
          "Diff (excerpt):\n{diff}\n\n"
          "Write one commit subject line for this diff, formatted like the similar subjects."),
)
DEFAULT_PARAMS = GenParams(max_tokens=24)
_LABELS = ("Subject:", "Commit subject:", "Subject line:", "Commit message:")


@dataclass
class LLMDrafts:
    """Subjects and, per row, the answer's provenance (model, backend, template hash, parameters),
    its raw text, its time and whether NNGen's subject stood in for an empty answer."""

    subjects: list[str]
    provenance: list[dict[str, Any]] = field(default_factory=list)


def parse_subject(text: str) -> str:
    """The first non-empty line of ``text``, without a leading ``Subject:`` label or surrounding quotes."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    for label in _LABELS:
        if line.lower().startswith(label.lower()):
            line = line[len(label):].strip()
    while len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'`":
        line = line[1:-1].strip()
    return line.strip("\"'`").strip()


def prompt_values(l1: dict[str, Any], neighbours: list[str], diff: str) -> dict[str, str]:
    """What :data:`SUBJECT_TEMPLATE` is rendered with for one diff."""
    nbs = "\n".join(f"- {s.strip()[:NEIGHBOUR_CHARS]}" for s in neighbours if s.strip()) or NOT_GIVEN
    return {"subsystem": l1.get("subsystem") or NOT_GIVEN, "change_type": str(l1.get("change_type") or NOT_GIVEN),
            "complexity": str(l1.get("complexity") or NOT_GIVEN), "neighbours": nbs,
            "diff": prompts.diff_view(diff, max_chars=DIFF_CHARS)}


def draft(backend: Backend, level1_preds: list[dict[str, Any]], neighbours: list[list[str]], diffs: list[str],
          force_prefix: bool = True, params: GenParams = DEFAULT_PARAMS,
          template: PromptTemplate = SUBJECT_TEMPLATE) -> LLMDrafts:
    """One subject per diff from ``backend`` (see the module docstring). With ``force_prefix`` the
    subject starts with ``level1_preds[i]["subsystem"]:`` (:func:`with_prefix`, as NNGen is given it)."""
    if not len(level1_preds) == len(neighbours) == len(diffs):
        raise InputError(f"need one level-1 prediction and one neighbour list per diff, got "
                         f"{len(level1_preds)}, {len(neighbours)} and {len(diffs)}")
    out = LLMDrafts([])
    for l1, nbs, diff in zip(level1_preds, neighbours, diffs, strict=True):
        ans = ask(backend, template, prompt_values(l1, nbs, diff), params)
        subject, fallback = parse_subject(ans.text), ""
        if not subject:
            subject, fallback = (nbs[0].strip() if nbs else ""), "nngen: empty answer"
        prefix = (l1.get("subsystem") or "") if force_prefix else ""
        out.subjects.append(with_prefix(subject, prefix) if subject else subject)
        out.provenance.append({**ans.provenance(), "raw": ans.text, "elapsed_s": ans.elapsed_s,
                               "fallback": fallback, "forced_prefix": prefix})
    return out


def draft_subjects(backend: Backend, level1_preds: list[dict[str, Any]], neighbours: list[list[str]],
                   diffs: list[str], force_prefix: bool = True, params: GenParams = DEFAULT_PARAMS) -> list[str]:
    """The subjects of :func:`draft` (its provenance dropped)."""
    return draft(backend, level1_preds, neighbours, diffs, force_prefix, params).subjects
