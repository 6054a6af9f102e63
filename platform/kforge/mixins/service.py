"""check / validate / recommend on the champion model, with a prediction cache keyed by version.

Example::

    svc = PredictionService(paths)
    svc.check(["Caching", "Authorization"], "COMPUTE")["probability"]
"""

import itertools
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from kforge.config import Paths
from kforge.errors import InputError
from kforge.mixins.cache import PredictionCache
from kforge.mixins.catalogue import Catalogue, load_catalogue
from kforge.mixins.dataset import feature_columns
from kforge.mixins.harness import compose
from kforge.mixins.predictor import MixinPredictor
from kforge.mixins.release import BUNDLE_FILE, MODEL_NAME

MAX_RECOMMEND_COMBOS = 200
INPUTS_KEY = "_model_inputs"    # stored with each cache entry, never returned to callers


def load_predictor(tracker: Any, version: int) -> MixinPredictor:
    """The bundle of ``kforge-mixins`` version ``version`` (the registered model directory's
    ``artifacts/bundle.joblib``), downloaded once into the model cache for serving. The release
    path never scores this cache: it downloads the registered directory itself.

    The cached file is used only when its sha256 equals the one that the version's run recorded
    when kforge saved it. Otherwise (changed, truncated, replaced, or a version from before digests were
    recorded) it is downloaded again from the registry and checked before it is unpickled."""
    import mlflow

    from kforge.registry.trusted import loads, reader, recorded, sha256_of

    mv = tracker.client().get_model_version(MODEL_NAME, str(version))
    local = Path(tracker.paths.models_cache) / "mixins" / f"v{version}" / BUNDLE_FILE
    want = recorded(tracker, mv.run_id, BUNDLE_FILE)
    data = local.read_bytes() if want is not None and local.is_file() else None
    if data is None or sha256_of(data) != want:
        tmp = mlflow.artifacts.download_artifacts(artifact_uri=f"{mv.source}/artifacts/{BUNDLE_FILE}",
                                                  tracking_uri=tracker.tracking_uri)
        data = reader(tracker, mv.run_id, legacy_ok=True)(Path(tmp), BUNDLE_FILE)
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.{os.getpid()}.part")
        part.write_bytes(data)
        part.replace(local)   # atomic: a concurrent reader sees the old file or the new one
    return loads(data, local, BUNDLE_FILE, use_joblib=True)


class PredictionService:
    """Predictions from the current champion; ``version``/``predictor`` may be injected (tests, bench)."""

    def __init__(self, paths: Paths, predictor: MixinPredictor | None = None, version: int | None = None,
                 catalogue: Catalogue | None = None, use_cache: bool = True) -> None:
        self.paths = paths
        self.cat = catalogue or load_catalogue(paths)
        self._predictor = predictor
        self._version = version
        self.cache = PredictionCache(paths) if use_cache else None
        self.last_inputs = pl.DataFrame()
        self._inputs: list[pl.DataFrame] = []

    @property
    def version(self) -> int:
        if self._version is None:
            from kforge.registry import Tracker

            champ = Tracker(self.paths).champion(MODEL_NAME)
            if champ is None:
                raise InputError(f"no champion {MODEL_NAME} model yet: materialize the mixins asset group "
                                 "or run `kforge mixins exercise` then `kforge mixins train`")
            self._version = int(champ.version)
        return self._version

    @property
    def predictor(self) -> MixinPredictor:
        if self._predictor is None:
            from kforge.registry import Tracker

            self._predictor = load_predictor(Tracker(self.paths), self.version)
        return self._predictor

    def _cached(self, key: dict[str, Any], compute: Any) -> dict[str, Any]:
        """The answer for ``key``, from the cache or computed. Either way ``last_inputs`` is left
        holding the model inputs behind the answer (stored with the entry, so a cache hit can be
        monitored for drift without loading the model)."""
        k = json.dumps(key, sort_keys=True)
        if self.cache is not None:
            hit = self.cache.get(self.version, k)
            if hit is not None:
                rows = hit.pop(INPUTS_KEY, None)
                self.last_inputs = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
                return {**hit, "cached": True}
        self._inputs = []
        value = compute()
        self.last_inputs = pl.concat(self._inputs, how="diagonal_relaxed") if self._inputs else pl.DataFrame()
        if self.cache is not None:
            self.cache.put(self.version, k, {**value, INPUTS_KEY: self.last_inputs.to_dicts()})
        return {**value, "cached": False}

    def _names(self, mixins: list[str], node_type: str, min_n: int = 2) -> tuple[list[str], str]:
        names = [self.cat.canonical(m) for m in mixins]
        if len(set(names)) != len(names):
            raise InputError(f"a mixin is listed twice: {', '.join(mixins)}")
        if len(names) < min_n:
            raise InputError(f"need at least {min_n} mixins, got {len(names)}")
        return names, self.cat.node_type(node_type)

    def _predict(self, queries: list[tuple[list[str], str]], explain: bool = True) -> list[dict[str, Any]]:
        traits = self.cat.traits()
        frame = self.predictor.frame(queries, traits)
        self._inputs.append(frame.select(feature_columns(frame)))
        return self.predictor.predict(queries, traits, explain=explain, frame=frame)

    def check(self, mixins: list[str], node_type: str) -> dict[str, Any]:
        names, node = self._names(mixins, node_type)
        if len(names) != 2:
            raise InputError("check takes exactly two mixins; use `kforge mixins validate` for a set")
        return self._cached({"op": "check", "m": sorted(names), "n": node},
                            lambda: {"model_version": self.version, **self._predict([(names, node)])[0]})

    def _composition(self, names: list[str], node: str) -> dict[str, Any]:
        """Whether the classes compose in the given order; else an order that does (by running ``type``)."""
        try:
            compose(self.cat, names, node)
            return {"composes": True, "order": names}
        except TypeError as exc:
            for perm in itertools.islice(itertools.permutations(names), 720):
                try:
                    compose(self.cat, list(perm), node)
                    return {"composes": False, "error": str(exc), "working_order": list(perm)}
                except TypeError:
                    continue
            return {"composes": False, "error": str(exc), "working_order": None}

    def validate(self, mixins: list[str], node_type: str) -> dict[str, Any]:
        names, node = self._names(mixins, node_type)

        def compute() -> dict[str, Any]:
            pairs = [sorted(p) for p in itertools.combinations(names, 2)]
            preds = self._predict([(p, node) for p in pairs] + ([(names, node)] if len(names) > 2 else []))
            pair_preds, set_pred = preds[: len(pairs)], (preds[-1] if len(names) > 2 else preds[0])
            indep = 1.0
            for p in pair_preds:
                indep *= p["probability"]
            warnings = []
            comp = self._composition(names, node)
            if not comp["composes"]:
                warnings.append(f"cannot compose in the order given ({comp['error']}); "
                                f"working order: {comp.get('working_order')}")
            for p in pair_preds:
                if p["probability"] < 0.5:
                    reasons = ", ".join(sorted({c["reason"] for c in p["similar_conflicts"] if c["match"] == "exact"}))
                    warnings.append(f"{'+'.join(p['mixins'])}: P(success)={p['probability']:.2f}"
                                    + (f" (observed: {reasons})" if reasons else ""))
            for risk in set_pred["structural_risks"]:
                warnings.append(f"structural: {risk}")
            return {"model_version": self.version, "mixins": names, "node_type": node,
                    "set_probability": set_pred["probability"], "set_regime": set_pred["regime"],
                    "set_risk": 1 - set_pred["probability"], "pairwise_independent_probability": indep,
                    "weakest_pair": min(pair_preds, key=lambda p: p["probability"])["mixins"],
                    "pairs": [{k: p[k] for k in ("mixins", "probability", "regime", "observed", "beta_binomial")}
                              for p in pair_preds],
                    "composition": comp, "warnings": warnings,
                    "top_features": set_pred["top_features"], "similar_conflicts": set_pred["similar_conflicts"]}

        return self._cached({"op": "validate", "m": names, "n": node}, compute)

    def candidates(self, need: str) -> list[str]:
        """Mixins providing a need: its name, a tag, or a category."""
        key = need.strip().lower().replace("_", "-")
        traits = self.cat.traits()
        out = [m for m in sorted(self.cat.mixins)
               if m.lower() == key.replace("-", "") or key in [t.lower() for t in traits[m]["tags"]]
               or traits[m]["category"].replace("_", "-") == key]
        if not out:
            raise InputError(f"nothing in the catalogue provides {need!r} (match a mixin name, tag or category; "
                             f"see `kforge mixins catalogue`)")
        return out

    def recommend(self, node_type: str, need: list[str], have: list[str] | None = None, top: int = 5) -> dict[str, Any]:
        node = self.cat.node_type(node_type)
        have_names = [self.cat.canonical(h) for h in (have or [])]
        if not need:
            raise InputError("--need lists at least one capability, e.g. --need caching,metrics")
        if top < 1:
            raise InputError(f"--top must be >= 1, got {top}")
        options = [[c for c in self.candidates(n) if c not in have_names] or [c for c in self.candidates(n)] for n in need]

        def compute() -> dict[str, Any]:
            combos = []
            for choice in itertools.islice(itertools.product(*options), MAX_RECOMMEND_COMBOS):
                full = sorted(set(have_names) | set(choice))
                if len(full) < 2 or full in [c[1] for c in combos]:
                    continue
                combos.append((sorted(set(choice) - set(have_names)), full))
            if not combos:   # a lone mixin is not a combination: nothing for the model to score
                raise InputError(f"no combination of two or more mixins to rank for --need {','.join(need)}"
                                 f"{' --have ' + ','.join(have_names) if have_names else ''}: name the mixins already "
                                 "used with --have, or two or more capabilities with --need")
            queries = [(full, node) for _, full in combos]
            preds = self._predict(queries, explain=True)
            ranked = []
            for (added, full), p in zip(combos, preds, strict=True):
                pair_ps = self._predict([(sorted(x), node) for x in itertools.combinations(full, 2)], explain=False)
                weakest = min(pair_ps, key=lambda q: q["probability"])
                conf = "high" if p["regime"] == "seen_pair" and p["observed"] >= 10 else (
                    "medium" if p["regime"] != "unseen_mixin" else "low")
                ranked.append({"add": added, "set": full, "probability": p["probability"], "confidence": conf,
                               "regime": p["regime"], "weakest_pair": weakest["mixins"],
                               "weakest_pair_probability": weakest["probability"],
                               "reasons": [f"{f['feature']}={f['value']:g} ({f['contribution']:+.2f})"
                                           for f in p["top_features"][:3]]
                               + [f"observed {c['reason']} in {c['combination']} x{c['count']}"
                                  for c in p["similar_conflicts"][:2]] + p["structural_risks"]})
            ranked.sort(key=lambda r: (-r["probability"], -r["weakest_pair_probability"]))
            return {"model_version": self.version, "node_type": node, "need": need, "have": have_names,
                    "recommendations": ranked[:top]}

        return self._cached({"op": "recommend", "n": node, "need": sorted(need), "have": sorted(have_names),
                             "top": top}, compute)
