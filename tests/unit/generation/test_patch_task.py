"""The focused patch task: the LM is shown the pre-image of the file it must change and learns the
commit's real hunk; drafts are judged by git on the parent tree, and by measures git cannot be fooled on."""

import subprocess
from pathlib import Path

import polars as pl
import pytest
from kforge.generation import patch_task as P
from kforge.generation.evaluate import git_apply_check

SRC = ["// SPDX", *[f"int line{i};" for i in range(1, 41)], "static int probe(void)", "{", "\treturn 0;", "}"]
NEW = SRC[:42] + ["\tint ret = init();", "", "\tif (ret < 0)", "\t\treturn ret;"] + SRC[42:]


def _run(repo: Path, *a: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path):
    repo = tmp_path / "r"
    repo.mkdir()
    _run(repo, "init", "-q")
    shas = []
    for text in (SRC, NEW):
        (repo / "drv.c").write_text("\n".join(text) + "\n")
        _run(repo, "add", "drv.c")
        _run(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
        shas.append(_run(repo, "rev-parse", "HEAD").strip())
    diff = _run(repo, "diff", shas[0], shas[1])
    return repo, shas[0], shas[1], diff


def _rows(sha: str, parent: str, diff: str) -> pl.DataFrame:
    return pl.DataFrame({"repo": ["r"], "sha": [sha], "parent": [parent], "subject": ["drv: check init"],
                         "issue": ["probe ignores init() failures"], "diff": [diff]})


class Chars:
    """A codec of one id per character (markers are negative ids), enough to read prompts back."""

    eos_id = 0
    names = ("<issue>", "<ctx>", "<patch>", "<diff>", "<sub>", "<type>", "<size>", "<msg>")

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def marker(self, name: str) -> list[int]:
        return [-1 - self.names.index(name)]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) if i > 0 else f"[{self.names[-1 - i]}]" if i < 0 else "" for i in ids)


def test_item_holds_the_real_hunk_and_a_window_of_the_parent_file(repo):
    path, parent, sha, diff = repo
    (item,) = P.task_items(_rows(sha, parent, diff), {"r": path})
    hunk_in_diff = diff[diff.index("@@"):].rstrip("\n")
    assert item.hunk.path == "drv.c" and item.hunk.text == hunk_in_diff      # verbatim, not a skeleton
    assert len(item.window) == P.WINDOW
    assert item.window == SRC[item.window_start - 1:item.window_start - 1 + P.WINDOW]   # the parent's lines
    old = item.old_side()
    assert any(item.window[i:i + len(old)] == old for i in range(P.WINDOW - len(old) + 1))


def test_prompt_shows_path_and_window_and_the_target_is_the_hunk(repo):
    path, parent, sha, diff = repo
    (item,) = P.task_items(_rows(sha, parent, diff), {"r": path})
    ex = P.example(Chars(), item, max_len=2000)
    codec = Chars()
    prompt, target = codec.decode(ex.ids[:ex.n_prompt]), codec.decode(ex.ids[ex.n_prompt:])
    assert prompt.startswith("[<issue>]drv: check init") and prompt.endswith("[<patch>]")
    assert f"[<ctx>] drv.c @{item.window_start}\n" + "\n".join(item.window) in prompt
    assert target == item.hunk.text + "\n"


def test_rows_outside_the_focused_task_are_left_out(repo):
    path, parent, sha, diff = repo
    assert P.task_items(_rows(sha, parent, diff), {"r": path}, max_hunk_lines=3) == []       # too large a hunk
    assert P.task_items(_rows(sha, parent, diff), {}) == []                                  # no tree
    wrong = diff.replace(" int line40;", " int line99;")                                     # not this tree
    assert P.task_items(_rows(sha, parent, wrong), {"r": path}) == []


def test_git_judges_the_drafts_and_the_trivial_draft_is_caught(repo):
    path, parent, sha, diff = repo
    (item,) = P.task_items(_rows(sha, parent, diff), {"r": path})
    assert git_apply_check(path, parent, P.as_patch("drv.c", item.hunk.text))
    gold = item.hunk.text
    shifted = "@@ -2,7 +2,11 @@" + gold[gold.index(" @@") + 3:]            # right lines, wrong numbers
    trivial = "@@ -1,1 +1,2 @@\n int line5;\n+int nothing_asked_for;"
    items = [item] * 4
    s = P.score_drafts(items, [gold, shifted, trivial, "garbage"], {"r": path})
    assert s["patch_task_rows"] == 4
    assert s["patch_task_apply_share"] == 1 / 4                     # only the gold hunk applies as drafted
    assert s["patch_task_apply_share_repaired"] == 3 / 4            # repair fixes the numbers, and anchors the trivial one
    assert s["patch_task_old_side_exact"] == 2 / 4                  # ...which changes the wrong place
    assert s["patch_task_changed_f1"] == pytest.approx(2 / 4)         # and changes none of the asked-for lines


def test_training_mixes_the_focused_task_for_rows_with_a_tree(corpus):
    from kforge.generation.pipeline import build_examples
    from kforge.generation.retrieval import RetrievalIndex

    train = corpus.filter(pl.col("split") == "train")
    codec = Chars()
    codec.max_len = 4000
    r = train.row(3, named=True)
    item = P.TaskItem(r["repo"], r["sha"], r["parent"], r["subject"],
                      P.Hunk("drv.c", 41, 3, "@@ -41,3 +41,4 @@\n int line40;\n+\tcheck();\n static int probe(void)\n {"),
                      33, SRC[32:48])
    index = RetrievalIndex().fit(train)
    examples = build_examples(codec, train, index, self_in_index=True, patch_share=1.0, patch_items=[item])  # type: ignore[arg-type]
    targets = [codec.decode(e.ids[e.n_prompt:]) for e in examples]
    assert targets.count(item.hunk.text + "\n") == 1                  # the row with a tree: the real hunk
    patch_prompts = [codec.decode(e.ids[:e.n_prompt]) for e in examples if e.ids[0] == codec.marker("<issue>")[0]]
    assert sum(" drv.c @33\n" in p for p in patch_prompts) == 1
    # the others keep the skeleton task
    assert len(patch_prompts) == sum(1 for i in train["issue"] if i and len(i) > 20)
