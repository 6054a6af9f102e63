"""``kforge mixins ...``: the catalogue, the exercise harness, imports, training, and
check / validate / recommend on the champion ``kforge-mixins`` model."""

import argparse
import json
from typing import Any

from kforge.cli.common import Ctx, finite_number_in, print_table, seed_number
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mixins", help="mixin compatibility: observe, learn, check, validate, recommend")
    ms = p.add_subparsers(dest="mixins_cmd", metavar="ACTION")
    ms.required = True

    c = ms.add_parser("catalogue", help="list mixins and node types with their introspected traits")
    c.set_defaults(func=cmd_catalogue)
    r = ms.add_parser("register", help="register a module (file.py or dotted name) defining mixins/node types")
    r.add_argument("module")
    r.set_defaults(func=cmd_register)
    u = ms.add_parser("unregister", help="forget a registered module (its name, path or dotted name)")
    u.add_argument("name")
    u.set_defaults(func=cmd_unregister)
    e = ms.add_parser("exercise", help="run an exercise-harness batch and append its outcomes")
    e.add_argument("--trials-per-pair", type=int, default=6)
    e.add_argument("--sets", type=int, default=60, help="random 3-mixin sets to exercise")
    e.add_argument("--trials-per-set", type=int, default=4)
    e.add_argument("--seed", type=seed_number, default=None)
    e.set_defaults(func=cmd_exercise)
    i = ms.add_parser("import", help="import a mixin_compatibility_matrix export (CSV or JSONL)")
    i.add_argument("file")
    i.set_defaults(func=cmd_import)
    t = ms.add_parser("train", help="train, evaluate and release kforge-mixins (same as the mixin_model asset)")
    t.add_argument("--seed", type=seed_number, default=0, help="seed for splits, masking and the models")
    t.add_argument("--min-delta", type=finite_number_in(0.0), default=0.0,
                   help="Brier improvement over the champion needed for promotion (>= 0: a negative one would "
                        "promote a worse challenger)")
    t.set_defaults(func=cmd_train)

    k = ms.add_parser("check", help="P(two mixins work together on a node type), with an explanation")
    k.add_argument("mixins", nargs=2, metavar="MIXIN")
    k.add_argument("--node-type", required=True)
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_check)
    v = ms.add_parser("validate", help="pairwise and set-level risk of a whole set, with warnings")
    v.add_argument("mixins", nargs="+", metavar="MIXIN")
    v.add_argument("--node-type", required=True)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_validate)
    rc = ms.add_parser("recommend", help="rank mixins providing the needed capabilities")
    rc.add_argument("--node-type", required=True)
    rc.add_argument("--need", required=True, help="comma-separated capabilities (name, tag or category)")
    rc.add_argument("--have", default="", help="comma-separated mixins already used")
    rc.add_argument("--top", type=int, default=5)
    rc.add_argument("--json", action="store_true")
    rc.set_defaults(func=cmd_recommend)
    cc = ms.add_parser("cache", help="show or clear the prediction cache")
    cc.add_argument("--clear", action="store_true")
    cc.set_defaults(func=cmd_cache)


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _service(ctx: Ctx) -> Any:
    from kforge.mixins.service import PredictionService

    return PredictionService(ctx.paths)


def cmd_catalogue(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.mixins.catalogue import load_catalogue

    frame = load_catalogue(ctx.paths).traits_frame()
    print_table(frame.select("name", "kind", "origin", "category", "tags", "hooks", "hook_breaks_chain",
                             "reinvokes", "short_circuits", "rewrites_request", "state_writes", "sinks"))
    return 0


def cmd_register(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.mixins.catalogue import find_registration, register_module, registrations

    before = find_registration(registrations(ctx.paths), args.module)
    cat = register_module(ctx.paths, args.module)
    reg = find_registration(registrations(ctx.paths), args.module)
    if reg is None:   # another process unregistered it in between
        raise InputError(f"{args.module} was unregistered while it was being registered; run the command again")
    state = ("already registered" if before == reg else
             "registered again (new content)" if before is not None else "registered")
    print(f"{state}: {reg.name} ({reg.spec}, sha256 {reg.sha256[:12]}) provides {', '.join(reg.provides)}; "
          f"catalogue now has {len(cat.mixins)} mixins and {len(cat.nodes)} node types")
    return 0


def cmd_unregister(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.mixins.catalogue import unregister_module

    reg = unregister_module(ctx.paths, args.name)
    print(f"unregistered {reg.name} ({reg.spec}); {', '.join(reg.provides) or 'its mixins'} no longer in the catalogue")
    return 0


def cmd_exercise(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.mixins import pipeline
    from kforge.mixins.catalogue import load_catalogue

    for name in ("trials_per_pair", "sets", "trials_per_set"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} must be >= 0")
    wh = ctx.warehouse()
    n = pipeline.run_harness(wh, load_catalogue(ctx.paths), trials_per_pair=args.trials_per_pair, n_sets=args.sets,
                             trials_per_set=args.trials_per_set, seed=args.seed)
    fb = pipeline.ingest_feedback(wh)
    matrix = pipeline.refresh_matrix(wh)
    print(json.dumps({"harness_outcomes_added": n, "feedback_outcomes_added": fb, "matrix_rows": matrix.height}))
    return 0


def cmd_import(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.mixins import pipeline
    from kforge.mixins.catalogue import load_catalogue
    from kforge.mixins.outcomes import import_matrix

    wh = ctx.warehouse()
    n = import_matrix(args.file, wh, load_catalogue(ctx.paths))
    pipeline.refresh_matrix(wh)
    print(f"imported {n} observations from {args.file}")
    return 0


def cmd_train(ctx: Ctx, args: argparse.Namespace) -> int:
    """Ingest new feedback (the ``mixin_outcomes`` asset's job upstream), then the asset's function."""
    from kforge.mixins import pipeline
    from kforge.mixins.release import TrainConfig, train_and_release

    wh = ctx.warehouse()
    pipeline.ingest_feedback(wh)
    if not wh.has_table("mixin_outcomes") or wh.count("mixin_outcomes") == 0:
        raise InputError("no mixin outcomes yet: run `kforge mixins exercise` or import a matrix first")
    run = train_and_release(ctx.tracker(), wh, TrainConfig(seed=args.seed, min_delta=args.min_delta))
    rel = run.release
    print_table(run.train.evaluation.table())
    groups = run.train.per_mixin()
    if groups.height:
        print_table(groups.select("mixin", "n", "served_by", "shrink", "model_roc_auc", "rules_roc_auc", "learner_roc_auc",
                                  "delta_roc_auc"))
    transfer = run.train.predictor.transfer
    print(json.dumps({"checks": {c.name: c.passed for c in rel.checks}, "leakage": run.train.leakage.describe(),
                      "generalizes": (rel.check("generalizes").detail if rel.check("generalizes") else ""),
                      "unseen_mixin_scorer": transfer.served_by if transfer is not None else "learner",
                      "generalizes_fallback_mixins": run.train.fallback_mixins(),
                      "run_id": rel.run_id, "version": rel.version, "decision": rel.decision,
                      "promoted": rel.promoted, "reason": rel.reason,
                      "cache_entries_invalidated": run.cache_entries_invalidated}))
    return 0


def _fmt_features(p: dict[str, Any]) -> str:
    return ", ".join(f"{f['feature']}={f['value']:g} ({f['contribution']:+.2f})" for f in p["top_features"])


def _record(ctx: Ctx, service: Any, op: str, started: float, version: int, cached: bool,
            sets: list[tuple[list[str], str, float]]) -> None:
    """Log one check/validate/recommend call for monitoring: the model inputs behind the answer
    (drift; kept with cache entries too) and one item per answered set, keyed like ``mixins``
    feedback rows (``A,B|NODE``) so a later outcome is joined to what kforge said."""
    from kforge.monitoring.calls import record_call
    from kforge.monitoring.items import Item

    items = [Item(f"{','.join(sorted(names))}|{node}", "outcome", "success" if p >= 0.5 else "failure", p)
             for names, node, p in sets]
    record_call(ctx.warehouse(), "mixins", "kforge-mixins", version, started, len(items),
                batch_ref=f"{op}-cached" if cached else op,
                inputs=service.last_inputs if service.last_inputs.height else None, items=items)


def cmd_check(ctx: Ctx, args: argparse.Namespace) -> int:
    import time

    service = _service(ctx)
    started = time.perf_counter()
    p = service.check(args.mixins, args.node_type)
    _record(ctx, service, "check", started, p["model_version"], p["cached"],
            [(p["mixins"], p["node_type"], p["probability"])])
    if args.json:
        print(json.dumps(p, default=str))
        return 0
    verdict = "compatible" if p["compatible"] else "likely to conflict"
    print(f"{' + '.join(p['mixins'])} on {p['node_type']}: P(success)={p['probability']:.3f} ({verdict}; "
          f"{p['regime'].replace('_', ' ')}, {p['observed']} observations, Beta-binomial {p['beta_binomial']:.3f}; "
          f"model v{p['model_version']}{', cached' if p['cached'] else ''})")
    if p.get("scorer", "learner") != "learner":
        print(f"  scored by: {p['scorer']} ({p['scorer_reason']})")
    print(f"  top features: {_fmt_features(p)}")
    for r in p["structural_risks"]:
        print(f"  structural risk: {r}")
    for c in p["similar_conflicts"]:
        print(f"  observed: {c['reason']} in {c['combination']} x{c['count']} ({c['match']})")
    return 0


def cmd_validate(ctx: Ctx, args: argparse.Namespace) -> int:
    import time

    service = _service(ctx)
    started = time.perf_counter()
    v = service.validate(args.mixins, args.node_type)
    _record(ctx, service, "validate", started, v["model_version"], v["cached"],
            [(v["mixins"], v["node_type"], v["set_probability"])])
    if args.json:
        print(json.dumps(v, default=str))
        return 0
    print(f"{' + '.join(v['mixins'])} on {v['node_type']}: set P(success)={v['set_probability']:.3f} "
          f"(risk {v['set_risk']:.3f}; product of pairs {v['pairwise_independent_probability']:.3f}; "
          f"model v{v['model_version']}{', cached' if v['cached'] else ''})")
    for p in v["pairs"]:
        print(f"  pair {'+'.join(p['mixins'])}: {p['probability']:.3f} ({p['regime']}, {p['observed']} obs)")
    for w in v["warnings"]:
        print(f"  warning: {w}")
    return 1 if v["set_probability"] < 0.5 or not v["composition"]["composes"] else 0


def cmd_recommend(ctx: Ctx, args: argparse.Namespace) -> int:
    import time

    service = _service(ctx)
    started = time.perf_counter()
    r = service.recommend(args.node_type, _split(args.need), _split(args.have), top=args.top)
    _record(ctx, service, "recommend", started, r["model_version"], r["cached"],
            [(rec["set"], r["node_type"], rec["probability"]) for rec in r["recommendations"]])
    if args.json:
        print(json.dumps(r, default=str))
        return 0
    for i, rec in enumerate(r["recommendations"], 1):
        print(f"{i}. add {', '.join(rec['add']) or '(nothing new)'} -> {'+'.join(rec['set'])}: "
              f"P={rec['probability']:.3f}, confidence {rec['confidence']}, weakest pair "
              f"{'+'.join(rec['weakest_pair'])} ({rec['weakest_pair_probability']:.3f})")
        for reason in rec["reasons"]:
            print(f"     - {reason}")
    return 0


def cmd_cache(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.mixins.cache import PredictionCache

    cache = PredictionCache(ctx.paths)
    if args.clear:
        print(f"removed {cache.invalidate(keep_version=None)} cached predictions")
    else:
        print(f"{cache.size()} cached predictions in {cache.path}")
    return 0
