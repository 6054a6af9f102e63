"""The anonymiser: what must go (each category, several variants), what must stay (what diagnosis
needs), stable placeholders, user rules, the feedback hook, and that the rules engine gives the same
class on anonymised kernel logs and tracebacks. Every log and traceback here is written for this test."""

import json
import re
from pathlib import Path

import pytest
from kforge.errors import InputError
from kforge.healing.anonymize import Anonymizer, load_scrub_rules
from kforge.healing.rules import RuleEngine

ANON = Anonymizer.default()


def scrub(text: str) -> str:
    return ANON.scrub_text(text)


# -- what must go -------------------------------------------------------------------------------------

GONE = [
    # (category, text, the secret, the placeholder that replaces it)
    ("email", "ValueError: no account for maria.lopez@acme-robotics.com", "maria.lopez@acme-robotics.com", "<email-1>"),
    ("email", "Signed-off-by: Jan Novak <jan.novak+kernel@mail.example.cz>", "jan.novak+kernel@mail.example.cz", "<email-1>"),
    ("email", "sqlalchemy.exc.IntegrityError: duplicate key value (email)=(o_brien@uni.edu.au)", "o_brien@uni.edu.au", "<email-1>"),
    ("home", '  File "/home/mlopez/src/churn/train.py", line 42, in <module>', "mlopez", "/home/<user>/src"),
    ("home", '  File "/Users/kenji.tanaka/Library/Caches/pypoetry/x.py", line 7, in run', "kenji.tanaka", "/Users/<user>/"),
    ("home", '  File "C:\\Users\\Priya Raman\\AppData\\Local\\Programs\\Python\\app.py", line 3', "Priya Raman", "C:\\Users\\<user>\\"),
    ("home", '{"path": "C:\\\\Users\\\\dmitri\\\\proj\\\\run.py"}', "dmitri", "\\\\Users\\\\<user>\\\\"),
    ("home", "OSError: cannot open /mnt/c/Users/sam_w/data.csv", "sam_w", "/Users/<user>/data.csv"),
    ("ip", "ConnectionRefusedError: [Errno 111] connect to 10.42.7.19 port 5432 failed", "10.42.7.19", "<ip-1>"),
    ("ip", "[  101.2] nfs: server 192.168.178.23 not responding, still trying", "192.168.178.23", "<ip-1>"),
    ("ip", "socket.gaierror: bind to fe80::1c2b:3dff:fe4a:9e01%wlp2s0 failed", "fe80::1c2b:3dff:fe4a:9e01", "<ip-1>"),
    ("ip", "OSError: [Errno 99] Cannot assign requested address: ('2001:db8:85a3::8a2e:370:7334', 8080)",
     "2001:db8:85a3::8a2e:370:7334", "<ip-1>"),
    ("mac", "[    4.2] e1000e 0000:00:1f.6 eth0: (PCI Express:2.5GT/s:Width x1) 3c:52:82:5a:1b:9f", "3c:52:82:5a:1b:9f", "<mac-1>"),
    ("mac", "wlan0: authenticate with A4-2B-B0-C1-77-0E", "A4-2B-B0-C1-77-0E", "<mac-1>"),
    ("host", "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='ml-registry.corp.acme.io', port=443)",
     "ml-registry.corp.acme.io", "<host-1>"),
    ("host", "Mar  4 02:13:55 gpu-node-17 kernel: [ 88.1] BUG: soft lockup - CPU#3 stuck for 22s!", "gpu-node-17", "<host-1>"),
    ("host", "ssh: connect to host buildbox port 22: Connection refused", "buildbox", "<host-1>"),
    ("host", "urllib.error.URLError: <urlopen error [Errno -2] Name or service not known: wiki.intranet.acme.de>",
     "wiki.intranet.acme.de", "<host-1>"),
    ("host", "OSError: mount of dev-laptop.local failed", "dev-laptop.local", "<host-1>"),
    ("host", "fetch https://artifacts.acme-internal.net/models/v3.bin failed", "artifacts.acme-internal.net", "https://<host-1>/models"),
    ("login", "[    0.000000] Linux version 6.1.0-rc2 (kbuilder@ci-runner) (gcc 12.2.0) #7 SMP", "kbuilder@ci-runner", "(<login-1>)"),
    ("credentials", "sqlalchemy: could not connect to postgresql://etl_user:Tr0ub4dor@db.acme.io:5432/prod",
     "etl_user:Tr0ub4dor", "postgresql://<credentials>@<host-1>:5432"),
    ("credentials", "git clone https://oauth2:glpat-Zx8QwErTy12@gitlab.acme.io/ml/churn.git", "oauth2:glpat-Zx8QwErTy12", "<credentials>@"),
    ("credentials", "redis.exceptions.AuthenticationError: redis://:hunter2@cache.acme.io:6379/0", ":hunter2", "<credentials>"),
    ("token", "headers={'Authorization': 'token ghp_R2d2C3poBb8Jy0dA1Xw9Mv5Kq7Ls3Tn6Pu4H'}", "ghp_R2d2C3poBb8Jy0dA1Xw9Mv5Kq7Ls3Tn6Pu4H", "<token-1>"),
    ("token", "GH_TOKEN=github_pat_11AB2CD3E0x9YzQwErTyUiOp_aSdFgHjKlZxCvBnMqWeRtYuIoPaSdFgHjKl", "github_pat_11AB2CD3E0x9Yz", "<token-1>"),
    ("token", "botocore: InvalidClientTokenId for AKIAQ3EGRT7XJ2MZ4K5P", "AKIAQ3EGRT7XJ2MZ4K5P", "<token-1>"),
    ("token", "slack_sdk.errors.SlackApiError: invalid_auth (xoxb-2093847561-5540398271-Qm9vYmFyQmF6UXV4)",
     "xoxb-2093847561-5540398271-Qm9vYmFyQmF6UXV4", "<token-1>"),
    ("token", "openai.AuthenticationError: Incorrect API key provided: sk-proj-4fT9kQ2xW7mZ1bV8nR3cY6hJ0pL5", "sk-proj-4fT9kQ2xW7mZ1bV8nR3cY6hJ0pL5", "<token-1>"),
    ("token", "google.api_core.exceptions.Forbidden: key=AIzaSyD8x7Q2mK9pL4vB1nW6cR3tY0hJ5gF2eZs", "AIzaSyD8x7Q2mK9pL4vB1nW6cR3tY0hJ5gF2eZs", "<token-1>"),
    ("token", "jwt.exceptions.ExpiredSignatureError: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtbG9wZXoiLCJleHAiOjE3MDB9."
     "kX3vQ8r1Jd2mW9pZ4tN6bH0cF7yL5sG1aE2uR8oT3iE", "eyJzdWIiOiJtbG9wZXoiLCJleHAiOjE3MDB9", "<token-1>"),
    ("token", "> GET /v1/runs HTTP/1.1\n> Authorization: Bearer 7f3kQ9zR2mX8vB4nW1cT6yH0pL5jG3dS", "7f3kQ9zR2mX8vB4nW1cT6yH0pL5jG3dS", "Bearer <token-1>"),
    ("token", 'psycopg2.OperationalError: connection "dbname=prod user=etl password=Sup3rS3cret!"', "Sup3rS3cret!", "password=<token-1>"),
    ("token", 'config: {"api_key": "q8W2eR5tY7uI9oP1aS3d"}', "q8W2eR5tY7uI9oP1aS3d", '"api_key": "<token-1>"'),
    ("token", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7vQ\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7vQ", "<private-key>"),
    ("entropy", "ValueError: bad signature on 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg'", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg", "<secret-1>"),
    ("entropy", "aws: secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYq8Wz3Lp2 rejected", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYq8Wz3Lp2", "<secret-1>"),
    ("entropy", "webhook=https://hooks.example.com/T0A1B2C3/B9Z8Y7X6/Qx7Lm2Np9Rt4Vw1Ks8Jd3Hf", "Qx7Lm2Np9Rt4Vw1Ks8Jd3Hf", "https://<host-1>/<secret-1>"),
]


@pytest.mark.parametrize(("category", "text", "secret", "placeholder"), GONE, ids=[f"{g[0]}-{i}" for i, g in enumerate(GONE)])
def test_personal_data_and_secrets_go(category: str, text: str, secret: str, placeholder: str) -> None:
    out = scrub(text)
    assert secret not in out, out
    assert placeholder in out, out


# -- what must stay ------------------------------------------------------------------------------------

KEPT = [
    "KeyError: 'customer_id'",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    '  File "src/churn/features.py", line 118, in build_features',
    "BUG: KASAN: slab-use-after-free in ext4_xattr_set_entry+0x1b7/0x2a40 fs/ext4/xattr.c:1622",
    "UBSAN: shift-out-of-bounds in drivers/net/ethernet/intel/e1000e/netdev.c:1234:5",
    "KCSAN: data-race in __d_lookup_rcu / d_alloc_parallel",
    "WARNING: CPU: 2 PID: 3117 at kernel/locking/lockdep.c:734 register_lock_class+0xe10/0x1860",
    "RIP: 0010:skb_release_data+0x8a/0x5d0 net/core/skbuff.c:768",
    "RSP: 0018:ffffc90003a1fb48 EFLAGS: 00010246",
    "Call Trace:\n [<ffffffff81a3c2d4>] dump_stack_lvl+0x5b/0x7d",
    "Read of size 8 at addr ffff888021d5b7c0 by task kworker/u4:3/1051",
    "CPU: 1 PID: 4411 Comm: python3 Not tainted 5.15.0-rc1-00042-g3b7f9a1c2d4e #12",
    "CPU: 0 PID: 1 Comm: swapper/0 Tainted: G        W         6.1.0-rc2+ #7",
    "Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014",
    "[   12.345678][ T2148] e1000e 0000:00:19.0: enabling device",
    "_ZN4core9panicking5panic17h8e1f2c7a3b5d9e0fE+0x1a/0x40",
    "request_id=3f2a9c1e-7b4d-4e2a-9f1c-2d8e6b5a4c3f",
    "Linux version 5.15.0-rc1 (gcc 11.2.0) #1 SMP Tue Mar 1 12:00:00 UTC 2022",
    "at 12:34:56 elapsed 0:00:03",
    "model = self.net(x); logger.info(x); pandas.io.parsers.read_csv; np.int; threading.local",
    "torch.load('checkpoints/model.pt') vmlinux.o lib/list_debug.c setup.py",
    "inet_sctp6_SCTP_I_WANT_MAPPED_V4_ADDR StatelessRandomUniformV2 ipython-input-14-8b0de103d72d",
    "listening on 127.0.0.1:8080 and 0.0.0.0 and ::1, netmask 255.255.255.0",
    "ModuleNotFoundError: No module named 'sklearn.externals.joblib'",
    "pip download from https://files.pythonhosted.org/packages/aa/bb/numpy-1.26.4.tar.gz",
    "syntax error in line 5: unexpected token: end; token = None; password: ****",
]


@pytest.mark.parametrize("text", KEPT)
def test_what_diagnosis_needs_stays(text: str) -> None:
    assert scrub(text) == text


def test_site_packages_path_keeps_the_package_minus_the_user() -> None:
    line = '  File "/home/aisha/.venv/lib/python3.11/site-packages/pandas/core/frame.py", line 3761, in __getitem__'
    assert scrub(line) == line.replace("aisha", "<user>")


# -- placeholders -----------------------------------------------------------------------------------

def test_the_same_value_gets_the_same_placeholder_within_one_document() -> None:
    text = "from ana@acme.io to bo@acme.io, cc ana@acme.io; 10.0.0.5 -> 10.0.0.6 -> 10.0.0.5"
    out = scrub(text)
    assert out == "from <email-1> to <email-2>, cc <email-1>; <ip-1> -> <ip-2> -> <ip-1>"
    assert scrub("only bo@acme.io here") == "only <email-1> here"   # a new document numbers afresh


def test_counts_say_what_was_replaced() -> None:
    s = ANON.scrub('File "/home/ana/a.py", line 1\nError for ana@acme.io at 10.0.0.5 and 10.0.0.6')
    assert dict(s.counts) == {"home-user": 1, "email": 1, "ipv4": 2}


def test_scrub_fields_is_one_document_and_leaves_other_fields() -> None:
    row = {"id": "err-1", "log": "from 10.1.1.1", "traceback": "to 10.1.1.2 and 10.1.1.1", "value": "10.1.1.3"}
    out, counts = ANON.scrub_fields(row, ("log", "traceback"))
    assert out == {"id": "err-1", "log": "from <ip-1>", "traceback": "to <ip-2> and <ip-1>", "value": "10.1.1.3"}
    assert row["log"] == "from 10.1.1.1" and counts["ipv4"] == 3


# -- rules are data ---------------------------------------------------------------------------------

def test_default_rules_are_data_compiled_once() -> None:
    first, second = Anonymizer.default(), Anonymizer.default()
    assert [r.name for r in first.rules] == [r.name for r in second.rules]
    assert all(a is b for a, b in zip(first.rules, second.rules, strict=True))   # not recompiled
    names = {r.name for r in first.rules}
    assert {"email", "home-user", "ipv4", "ipv6", "mac", "hostname", "url-credentials", "github-token",
            "aws-access-key", "slack-token", "openai-key", "google-api-key", "jwt", "auth-header",
            "high-entropy"} <= names


def test_user_rules_run_first_and_home_rules_are_read(tmp_path: Path) -> None:
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps({"rules": [{"name": "codename", "pattern": r"\bPROJECT-[A-Z]+\b",
                                            "replacement": "<project-{n}>"}]}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "anonymize.json").write_text(json.dumps({"rules": [
        {"name": "ticket", "pattern": r"(?P<value>ACME-\d+)", "replacement": "<ticket>", "keep": ["ACME-0"]}]}))
    anon = Anonymizer.default([extra], home=home)
    assert [r.name for r in anon.rules[:2]] == ["codename", "ticket"]
    assert anon.scrub_text("PROJECT-ORCA failed, see ACME-4411 (not ACME-0), ana@acme.io") == \
        "<project-1> failed, see <ticket> (not ACME-0), <email-1>"
    assert Anonymizer.default(home=tmp_path).rules == ANON.rules   # no file in that home: the defaults


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a valid JSON rule file"),
    (json.dumps({"rules": [{"pattern": "x"}]}), "missing 'name'"),
    (json.dumps({"rules": [{"name": "a", "pattern": "("}]}), "invalid regex"),
    (json.dumps({"rules": [{"name": "a", "pattern": "x", "check": "magic"}]}), "check must be one of"),
    (json.dumps({"rules": [{"name": "a", "pattern": "x"}, {"name": "a", "pattern": "y"}]}), "duplicate rule names: a"),
    (json.dumps({"rules": "x"}), "expected"),
])
def test_bad_rule_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "rules.json"
    f.write_text(content)
    with pytest.raises(InputError, match=re.escape(message)):
        load_scrub_rules(f)


# -- the classifier sees the same class ------------------------------------------------------------------

PREAMBLE = ("2024-05-02 03:14:07 worker gpu-node-17.cluster.acme.com (10.20.30.40) started by "
            "mlopez@acme-robotics.com with GITHUB_TOKEN=ghp_R2d2C3poBb8Jy0dA1Xw9Mv5Kq7Ls3Tn6Pu4H\n")
SITE_FRAME = ('  File "/home/mlopez/.venv/lib/python3.11/site-packages/pandas/core/frame.py", line 3761, '
              "in __getitem__\n    indexer = self.columns.get_loc(key)\n")


def _personal_traceback(tb: str) -> str:
    """A corpus traceback as a user's machine would print it: under a home directory, after a log preamble."""
    tb = re.sub(r'File "([\w.]+\.py)"', r'File "/home/mlopez/projects/churn/\1"', tb)
    return PREAMBLE + tb.replace("Traceback (most recent call last):\n", "Traceback (most recent call last):\n" + SITE_FRAME, 1)


@pytest.fixture(scope="module")
def corpus_tracebacks() -> list[str]:
    from kforge.healing.corpus import load_programs, run_corpus

    return [r["traceback"] for r in run_corpus(load_programs()) if "Traceback" in r["traceback"]]


def _rule_id(engine: RuleEngine, row: dict) -> str | None:
    m = engine.match_row(row)
    return m.rule.id if m else None


def test_corpus_tracebacks_keep_their_class_when_anonymized(corpus_tracebacks: list[str]) -> None:
    engine = RuleEngine.default()
    assert len(corpus_tracebacks) >= 40
    matched = 0
    for tb in corpus_tracebacks:
        personal = _personal_traceback(tb)
        clean = scrub(personal)
        for secret in ("mlopez", "10.20.30.40", "gpu-node-17", "ghp_R2d2"):
            assert secret not in clean
        assert "/site-packages/pandas/core/frame.py" in clean and "/projects/churn/" in clean
        before = _rule_id(engine, {"traceback": personal})
        assert before == _rule_id(engine, {"traceback": tb})       # the preamble itself changes nothing
        assert _rule_id(engine, {"traceback": clean}) == before, tb
        matched += before is not None
    assert matched >= 30   # most corpus errors have a rule: the check is not vacuous


KERNEL_LOGS = {
    "kasan-uaf-read": """\
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118822] ==================================================================
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118830] BUG: KASAN: slab-use-after-free in tcp_retransmit_timer+0x2e1/0x3c0
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118851] Read of size 8 at addr ffff88810b4c2a18 by task swapper/2/0
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118860] CPU: 2 PID: 0 Comm: swapper/2 Not tainted 6.1.0-rc2-acme+ #7
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118866] Hardware name: Dell Inc. PowerEdge R740/0WRPXK, BIOS 2.12.2 07/09/2021
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118871] Call Trace:
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118890]  tcp_retransmit_timer+0x2e1/0x3c0
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118897]  tcp_write_timer_handler+0x1b4/0x3a0
Mar  4 02:13:55 gpu-node-17 kernel: [  301.118930] IPv4: peer 172.16.4.21:443 reset, our 10.20.30.40 (dev eno1 3c:52:82:5a:1b:9f)
""",
    "null-deref": """\
[ 1822.004011] BUG: kernel NULL pointer dereference, address: 0000000000000010
[ 1822.004019] #PF: supervisor read access in kernel mode
[ 1822.004025] PGD 0 P4D 0
[ 1822.004031] Oops: 0000 [#1] PREEMPT SMP NOPTI
[ 1822.004036] CPU: 5 PID: 9121 Comm: nvidia-smi Tainted: P           OE     5.15.0-91-generic #101-Ubuntu
[ 1822.004043] RIP: 0010:acme_gpu_ioctl+0x4d/0x1a0 [acme_gpu]
[ 1822.004080] module loaded from /home/mlopez/src/acme_gpu/acme_gpu.ko by mlopez@acme-robotics.com
""",
    "gpf": """\
[   77.510201][ T4412] general protection fault, probably for non-canonical address 0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN
[   77.510912][ T4412] KASAN: null-ptr-deref in range [0x0000000000000018-0x000000000000001f]
[   77.511356][ T4412] CPU: 0 PID: 4412 Comm: repro Not tainted 6.2.0-rc5-next-20230125 #3
[   77.511901][ T4412] RIP: 0010:nfs4_get_acl+0x9c/0x510 fs/nfs/nfs4proc.c:6012
[   77.512550][ T4412] nfs: server files.corp.acme.com (192.168.178.23) mounted by kbuilder@ci-runner
""",
    "lockdep-deadlock": """\
[  412.300100] ======================================================
[  412.300104] WARNING: possible circular locking dependency detected
[  412.300108] 6.6.0-acme-00012-g9f1c2d3e4b5a #2 Not tainted
[  412.300111] ------------------------------------------------------
[  412.300114] kworker/u16:2/211 is trying to acquire lock:
[  412.300118] ffff888104a3c0b8 (&dev->mutex){+.+.}-{3:3}, at: acme_reset_work+0x44/0x120
[  412.300160] reported to https://alerts.acme.io/hook?token=Qx7Lm2Np9Rt4Vw1Ks8Jd3Hf by ops@acme.io
""",
    "ubsan": """\
[    9.114402] ================================================================================
[    9.114406] UBSAN: array-index-out-of-bounds in /home/kbuilder/linux/drivers/acme/acme_core.c:421:17
[    9.114411] index 8 is out of range for type 'u32 [8]'
[    9.114415] CPU: 3 PID: 688 Comm: systemd-udevd Not tainted 6.1.0-rc2 #7
[    9.114440] eth1: link up, peer fe80::1c2b:3dff:fe4a:9e01 via 2001:db8:85a3::8a2e:370:7334
""",
    "task-hung": """\
2024-05-02T03:14:07.123456+00:00 storage-03.acme.internal kernel: INFO: task kworker/0:2:1187 blocked for more than 122 seconds.
2024-05-02T03:14:07.123460+00:00 storage-03.acme.internal kernel:       Not tainted 5.15.0-rc1 #1
2024-05-02T03:14:07.123463+00:00 storage-03.acme.internal kernel: "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.
2024-05-02T03:14:07.123470+00:00 storage-03.acme.internal kernel: task:kworker/0:2 state:D stack:0 pid:1187 ppid:2 flags:0x00004000
""",
}


@pytest.mark.parametrize("expected", sorted(KERNEL_LOGS))
def test_kernel_logs_keep_their_class_when_anonymized(expected: str) -> None:
    engine = RuleEngine.default()
    log = KERNEL_LOGS[expected]
    clean = scrub(log)
    for secret in ("gpu-node-17", "10.20.30.40", "172.16.4.21", "3c:52:82:5a:1b:9f", "mlopez", "kbuilder",
                   "files.corp.acme.com", "192.168.178.23", "Qx7Lm2Np9Rt4Vw1Ks8Jd3Hf", "ops@acme.io", "fe80::1c2b",
                   "2001:db8:85a3", "storage-03.acme.internal"):
        assert secret not in clean, (secret, clean)
    for kept in ("+0x", "ffff8881", "Not tainted", "PID:"):
        assert (kept in log) == (kept in clean)
    assert _rule_id(engine, {"log": log}) == expected
    assert _rule_id(engine, {"log": clean}) == expected


# -- the feedback hook --------------------------------------------------------------------------------

TB = ('Traceback (most recent call last):\n  File "/home/mlopez/projects/churn/train.py", line 12, in <module>\n'
      "    df = load(cfg)\nKeyError: 'price' (run by mlopez@acme-robotics.com on 10.20.30.40)")


def _rows(warehouse) -> list[dict]:  # noqa: ANN001
    return warehouse.read("select * from feedback_healing order by feedback_id").to_dicts()


def test_feedback_text_is_anonymized_before_it_is_stored(warehouse) -> None:  # noqa: ANN001
    from kforge.feedback import add_feedback

    add_feedback("healing", {"kind": "label", "traceback": TB, "label": "error_class", "value": "py-keyerror"}, warehouse)
    add_feedback("healing", {"kind": "label", "traceback": TB, "label": "error_class", "value": "py-keyerror"}, warehouse,
                 anonymize=False)
    add_feedback("healing", {"kind": "fix", "error_class": "py-keyerror", "strategy": "dict-get-default",
                             "success": "true"}, warehouse)
    first, second, fix = _rows(warehouse)
    assert first["anonymized"] is True and second["anonymized"] is False and fix["anonymized"] is True
    for secret in ("mlopez", "10.20.30.40"):
        assert secret not in first["traceback"] and secret in second["traceback"]
    assert "KeyError: 'price'" in first["traceback"] and "/projects/churn/train.py\", line 12" in first["traceback"]
    engine = RuleEngine.default()
    assert _rule_id(engine, first) == _rule_id(engine, second) == "py-keyerror"


def test_import_anonymizes_and_stays_exactly_once(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    from kforge.feedback.store import import_feedback_file

    other_user = TB.replace("mlopez", "kbuilder")   # the same error from another user: two observations
    f = tmp_path / "labels.jsonl"
    f.write_text("".join(json.dumps({"kind": "label", "traceback": t, "label": "error_class", "value": "py-keyerror"}) + "\n"
                         for t in (TB, other_user)))
    assert import_feedback_file("healing", f, warehouse).added == 2
    again = import_feedback_file("healing", f, warehouse)
    assert (again.added, again.already_imported) == (0, 2)
    rows = _rows(warehouse)
    assert len(rows) == 2 and all(r["anonymized"] for r in rows)
    assert rows[0]["traceback"] == rows[1]["traceback"]          # identical once scrubbed, yet both kept
    assert not any(s in rows[0]["traceback"] for s in ("mlopez", "kbuilder", "acme-robotics"))


def test_the_homes_rules_apply_to_stored_feedback(warehouse, kforge_home: Path) -> None:  # noqa: ANN001
    from kforge.feedback import add_feedback

    (kforge_home / "anonymize.json").write_text(json.dumps(
        {"rules": [{"name": "codename", "pattern": r"\bORCA\b", "replacement": "<project>"}]}))
    add_feedback("healing", {"kind": "label", "log": "[ 1.0] BUG: KASAN: slab-out-of-bounds in orca_probe+0x1/0x2 (ORCA)",
                             "label": "crash_class", "value": "kasan-out-of-bounds"}, warehouse)
    assert _rows(warehouse)[0]["log"].endswith("orca_probe+0x1/0x2 (<project>)")


def test_families_without_text_fields_keep_their_columns() -> None:
    from kforge.feedback import schemas

    s = schemas()
    assert s["healing"].text_fields == ("log", "traceback") and "anonymized" in s["healing"].polars_schema()
    assert s["acceptance"].text_fields == () and "anonymized" not in s["acceptance"].polars_schema()
