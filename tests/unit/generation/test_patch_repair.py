"""Drafted diffs re-anchored against a real git tree: wrong line numbers and counts are fixed,
invented context is dropped, and git itself judges the result."""

import subprocess
from pathlib import Path

from kforge.generation.evaluate import git_apply_check
from kforge.generation.patch_repair import repair_patch, tree_reader

SRC = "\n".join([f"int line{i};" for i in range(1, 41)] + ["static int probe(void)", "{", "\treturn 0;", "}"]) + "\n"


def _repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "r"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True, text=True)  # noqa: E731
    run("init", "-q")
    (repo / "drv.c").write_text(SRC)
    run("add", "drv.c")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return repo, run("rev-parse", "HEAD").stdout.strip()


DRAFT = """diff --git a/drv.c b/drv.c
index 1111111..2222222 100644
--- a/drv.c
+++ b/drv.c
@@ -3,9 +3,12 @@ static int probe(void)
 static int probe(void)
 {
-\treturn 0;
+\tif (init() < 0)
+\t\treturn -EIO;
+\treturn 0;
@@ -90,4 +90,5 @@
 int no_such_line;
+int invented;
"""


def test_wrong_numbers_and_counts_are_fixed_and_invented_hunks_dropped(tmp_path):
    repo, head = _repo(tmp_path)
    assert not git_apply_check(repo, head, DRAFT)          # as drafted: git refuses it
    fixed, stats = repair_patch(DRAFT, tree_reader(repo, head))
    assert git_apply_check(repo, head, fixed)
    assert (stats.hunks, stats.kept, stats.dropped) == (2, 1, 1)
    assert "@@ -40,5 +40,7 @@" in fixed and "invented" not in fixed  # padded with the file's own context
    assert stats.reasons == ["drv.c: old lines not found"]


def test_whitespace_only_mismatch_uses_the_files_text(tmp_path):
    repo, head = _repo(tmp_path)
    draft = DRAFT.split("@@ -90")[0].replace("\treturn 0;", "    return 0;")  # spaces where the file has a tab
    fixed, stats = repair_patch(draft, tree_reader(repo, head))
    assert stats.kept == 1 and "-\treturn 0;" in fixed and git_apply_check(repo, head, fixed)


def test_nothing_anchorable_gives_an_empty_patch(tmp_path):
    repo, head = _repo(tmp_path)
    other = DRAFT.replace("drv.c", "missing.c")
    fixed, stats = repair_patch(other, tree_reader(repo, head))
    assert fixed == "" and stats.kept == 0 and stats.dropped == 2 and not git_apply_check(repo, head, fixed)
    assert repair_patch("no diff here", tree_reader(repo, head))[0] == ""


def test_new_file_is_recounted(tmp_path):
    repo, head = _repo(tmp_path)
    draft = "diff --git a/new.h b/new.h\nnew file mode 100644\n--- /dev/null\n+++ b/new.h\n@@ -0,0 +1,9 @@\n+#define A 1\n+#define B 2\n"
    fixed, stats = repair_patch(draft, tree_reader(repo, head))
    assert "@@ -0,0 +1,2 @@" in fixed and stats.kept == 1 and git_apply_check(repo, head, fixed)
