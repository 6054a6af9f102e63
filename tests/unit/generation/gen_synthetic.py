"""A small deterministic kernel-style corpus (the commit_diffs schema) for the generation tests."""

import random
from datetime import UTC, datetime, timedelta

import polars as pl

SUBS = {
    "net/ice": ("drivers/net/ice/ice_ethdev.c", "ice_rx_queue_setup", "rxq"),
    "net/mlx5": ("drivers/net/mlx5/mlx5_flow.c", "mlx5_flow_create", "flow"),
    "eal": ("lib/eal/common/eal_memory.c", "rte_eal_memory_init", "memseg"),
    "crypto/qat": ("drivers/crypto/qat/qat_sym.c", "qat_sym_enqueue", "op"),
    "doc": ("doc/guides/nics/ice.rst", "section", "text"),
}
VERBS = [("fix", "fix {obj} leak in {fn}"), ("fix", "fix null dereference of {obj}"), ("feature", "add {obj} support"),
         ("cleanup", "remove unused {obj} variable"), ("feature", "support {obj} offload")]


def make_rows(n: int = 240, seed: int = 3) -> pl.DataFrame:
    rnd = random.Random(seed)
    t0 = datetime(2023, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        sub = rnd.choice(list(SUBS))
        path, fn, obj = SUBS[sub]
        _, tmpl = rnd.choice(VERBS)
        obj2 = f"{obj}{rnd.randint(0, 40)}"
        word = rnd.choice(["on reset", "in Rx path", "for VF", "at close", "with IOVA", "on stop", "in Tx burst", ""])
        subject = f"{sub}: " + tmpl.format(obj=obj2 + rnd.choice(["_cfg", "_ctx", "_q", ""]), fn=fn) + (" " + word if word else "")
        body = (f"The {obj2} in {fn}() was not handled when the device {rnd.choice(['stops', 'resets', 'starts'])}.\n"
                f"This patch handles it.\n\nSigned-off-by: Dev {i % 7} <dev{i % 7}@example.org>")
        k = rnd.randint(1, 12)
        added = "\n".join(f"+\t{obj2}_{j} = {fn}_{j}(dev);" for j in range(k))
        diff = (f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
                f"@@ -10,3 +10,{3 + k} @@ static int {fn}(struct rte_dev *dev)\n \tint ret;\n{added}\n-\told_{obj2}();\n \treturn 0;\n")
        rows.append({"repo": "demo", "sha": f"{i:040x}", "parent": f"{i + 1000:040x}",
                     "author_date": (t0 + timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                     "subject": subject, "body": body, "diff": diff, "diff_bytes_full": len(diff), "truncated": False,
                     "author_email": f"dev{i % 7}@example.org", "author_name": f"Dev {i % 7}"})
    rows.append({**rows[5], "sha": "b" * 40, "author_email": "ci-bot@example.org", "author_name": "dependabot[bot]"})
    return pl.DataFrame(rows)
