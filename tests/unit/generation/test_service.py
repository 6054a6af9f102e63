"""``kforge generate``'s confidence: the bundle's calibrator is fitted on message drafts only, so a
message gets a calibrated confidence and a drafted patch gets none (never a number from a
calibrator that has not seen patch drafts)."""

from types import SimpleNamespace

from kforge.generation import evaluate, service

DIFF = "diff --git a/drivers/net/ice/x.c b/drivers/net/ice/x.c\n--- a/drivers/net/ice/x.c\n+++ b/drivers/net/ice/x.c\n"


class _Calib:
    def predict(self, xs):  # noqa: ANN001, ANN201
        return [0.9 for _ in xs]


def _bundle() -> SimpleNamespace:
    l1 = SimpleNamespace(predict=lambda **kw: [{"subsystem": "net/ice", "subsystem_conf": 0.8}])
    return SimpleNamespace(level1=l1, backbone=object(), index=object(), adapters_dir=None, confidence=_Calib())


def _drafts(text: str) -> evaluate.Drafts:
    return evaluate.Drafts([text.split("\n", 1)[0]], [text], [-0.5], [{"subsystem": "net/ice"}], [["net/ice: old"]])


def test_a_message_is_calibrated_and_a_patch_is_not(monkeypatch):
    monkeypatch.setattr(evaluate, "draft_messages", lambda *a, **kw: _drafts("net/ice: fix leak\n\nbody"))
    msg = service.generate_message(_bundle(), DIFF)
    assert msg.confidence == 0.9 and "X-Kforge-Confidence: 0.900" in msg.text
    monkeypatch.setattr(evaluate, "draft_patches", lambda *a, **kw: _drafts("net/ice: fix leak\n\nbody\n---\n" + DIFF))
    patch = service.generate_patch(_bundle(), "ice rx queue leaks on reset")
    assert patch.confidence is None and "X-Kforge-Confidence: n/a" in patch.text
