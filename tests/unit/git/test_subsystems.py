import json
from pathlib import Path

import polars as pl
import pytest
from kforge.errors import InputError
from kforge.git.subsystems import SubsystemRules


@pytest.mark.parametrize(("path", "subsystem"), [
    ("drivers/net/ethernet/intel/ice/ice_main.c", "net/ice"),
    ("drivers/gpu/drm/i915/gt/intel_gt.c", "drm/i915"),
    ("drivers/usb/core/hub.c", "usb/core"),
    ("drivers/net/ice/ice_rxtx.c", "net/ice"),  # DPDK layout
    ("fs/btrfs/inode.c", "fs/btrfs"),
    ("kernel/sched/fair.c", "sched"),
    ("mm/slub.c", "mm"),
    ("arch/x86/kernel/cpu/bugs.c", "arch/x86"),
    ("Documentation/admin-guide/foo.rst", "docs"),
    ("MAINTAINERS", "meta"),
    ("Makefile", "root"),
])
def test_kernel_layout(path: str, subsystem: str) -> None:
    assert SubsystemRules.load().of(path) == subsystem


def test_column_is_vectorised_over_unique_paths() -> None:
    s = SubsystemRules.load().column(pl.Series(["mm/a.c", "mm/a.c", "fs/ext4/x.c"]))
    assert s.to_list() == ["mm", "mm", "fs/ext4"]


def test_custom_and_invalid_rules(tmp_path: Path) -> None:
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"rules": [{"pattern": "^src/([^/]+)/", "subsystem": "core/{1}"}]}))
    assert SubsystemRules.load(f).of("src/io/x.c") == "core/io"
    assert SubsystemRules.load(f).of("other.c") == "other"
    f.write_text("{not json")
    with pytest.raises(InputError, match="invalid"):
        SubsystemRules.load(f)
    with pytest.raises(InputError, match="not found"):
        SubsystemRules.load(tmp_path / "missing.json")
    f.write_text(json.dumps({"rules": [{"pattern": "([", "subsystem": "x"}]}))
    with pytest.raises(InputError):
        SubsystemRules.load(f)
