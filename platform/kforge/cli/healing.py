"""``kforge healing ...``: classify, explain, evaluate, suggest-rules, train, anonymize."""

import argparse
import json
from pathlib import Path

from kforge.cli.common import Ctx
from kforge.errors import InputError
from kforge.healing.config import MODELS, HealingConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("healing", help="error/crash classification, rules, fix strategies")
    hs = p.add_subparsers(dest="healing_cmd", metavar="ACTION")
    hs.required = True
    c = hs.add_parser("classify", help="classify errors: JSONL rows with id + log or traceback")
    c.add_argument("--input", required=True, metavar="FILE.jsonl")
    c.add_argument("--output", required=True, metavar="FILE.jsonl")
    c.add_argument("--model", default=None,
                   help="a healing_model.pkl that this home's registry recorded, e.g. a downloaded registry artifact "
                        "(default: the registry's champion); any other file is refused unread")
    c.set_defaults(func=cmd_classify)
    e = hs.add_parser("explain", help="explain one error (a file with a kernel log or a Python traceback)")
    e.add_argument("file")
    e.add_argument("--model", default=None, help="as for classify: a model that this home's registry recorded")
    e.add_argument("--id", default=None, help="the error's id, for feedback (default: err-<hash of the text>)")
    e.set_defaults(func=cmd_explain)
    v = hs.add_parser("evaluate", help="grouped held-out evaluation on the real data (needs --data)")
    v.add_argument("--kind", choices=("kernel", "python", "all"), default="all")
    v.add_argument("--folds", type=int, default=5)
    v.add_argument("--extras", action="store_true", help="also template mining, bandit replay and fix effectiveness")
    v.add_argument("--generalizes", choices=("no", "also", "only"), default="no",
                   help="leave one source out (notebook platform, kernel OS) as the classifier's generalizes gate "
                        "does: 'also' adds that section, 'only' runs just it")
    v.add_argument("--text-encoder", action=argparse.BooleanOptionalAction, default=HealingConfig.text_encoder,
                   help="evaluate with the pretrained sentence encoder's members on notebook models (issue 20)")
    v.set_defaults(func=cmd_evaluate)
    s = hs.add_parser("suggest-rules", help="propose rules for errors no rule matches")
    s.add_argument("--input", default=None, metavar="FILE.jsonl", help="errors (default: the real training files or the corpus)")
    s.add_argument("--label", default=None, help="label field used to measure precision")
    s.add_argument("--max", type=int, default=20)
    s.set_defaults(func=cmd_suggest)
    t = hs.add_parser("train", help="train on the stored corpus tables (+ feedback) and release each model "
                                    "(the same function as the healing assets)")
    t.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    t.add_argument("--test-share", type=float, default=HealingConfig.test_share,
                   help="share of groups held out, chosen by a hash of the group key")
    t.add_argument("--seed", type=int, default=HealingConfig.seed)
    t.add_argument("--replay-steps", type=int, default=HealingConfig.replay_steps)
    t.add_argument("--text-encoder", action=argparse.BooleanOptionalAction, default=HealingConfig.text_encoder,
                   help="add the pretrained sentence encoder's members to the notebook models (issue 20)")
    t.set_defaults(func=cmd_train)
    a = hs.add_parser("anonymize", help="scrub e-mails, user names, addresses, hosts, credentials and tokens from "
                                        "a log/traceback file or JSONL rows (the step applied before feedback is stored)")
    a.add_argument("--input", required=True, metavar="FILE", help="a text file (one document) or JSONL rows (.jsonl)")
    a.add_argument("--output", required=True, metavar="FILE")
    a.add_argument("--rules", action="append", default=[], metavar="FILE.json",
                   help="extra rules {\"rules\": [{\"name\", \"pattern\", \"replacement\"}]}, applied first "
                        "(repeatable; <home>/anonymize.json is always read)")
    a.add_argument("--fields", default=None, help="JSONL: comma-separated fields to scrub (default: log,traceback,report,text)")
    a.set_defaults(func=cmd_anonymize, creates_home=False)


def _model(ctx: Ctx, path: str | None):  # noqa: ANN202
    from kforge.healing.model import HealingModel
    from kforge.healing.pyfunc import load_champion

    if path:   # a user-given file: unpickled only if this home's registry recorded its sha256
        from kforge.registry.trusted import reader

        if not Path(path).exists():
            raise InputError(f"{path}: no such model file")
        return HealingModel.load(path, read=reader(ctx.tracker()))
    model = load_champion(ctx.tracker())
    if model is None:
        raise InputError("no healing model yet: run `kforge healing train` (or materialize the healing group), or pass --model")
    return model


def _descriptors(rows: list[dict]):  # noqa: ANN202
    from kforge.monitoring.descriptors import error_descriptors

    return error_descriptors(rows)


def _items(out: list[dict]) -> list:
    """Each predicted label (joined to labelled feedback rows by error id) and the matched rule
    (joined to fix rows: was the fix applied to the class kforge assigned?)."""
    from kforge.monitoring.items import Item

    items = []
    for r in out:
        key = str(r["id"])
        items += [Item(key, k[len("pred_"):], str(v), r.get(f"confidence_{k[len('pred_'):]}", r.get("confidence")))
                  for k, v in r.items() if k.startswith("pred_") and v is not None]
        if r.get("rule_id"):
            items.append(Item(key, "error_class", str(r["rule_id"]), r.get("confidence")))
    return items


def cmd_classify(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.jsonl import read_jsonl
    from kforge.text import use_encoder

    rows = [r for _, r in read_jsonl(args.input)]
    if not rows:
        raise InputError(f"{args.input}: no rows")
    import time

    from kforge.monitoring.calls import record_call

    model = _model(ctx, args.model)
    version = "file" if args.model else (ctx.tracker().version_of("kforge-healing") or "champion")
    started = time.perf_counter()
    with use_encoder(ctx.text_encoder()):   # loaded only if the model has encoder members
        out = model.classify(rows)
    record_call(ctx.warehouse(), "healing", "kforge-healing", version, started, len(out),
                batch_ref=Path(args.input).name, inputs=_descriptors(rows), items=_items(out))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w") as fh:
        for r in out:
            fh.write(json.dumps(r, default=str) + "\n")
    print(f"classified {len(out)} rows -> {args.output}")
    for line in model.abstention_summary(out):   # pred_<label> is always the top-1; abstain_<label> flags low confidence
        print(f"  {line}")
    return 0


def cmd_explain(ctx: Ctx, args: argparse.Namespace) -> int:
    import time

    from kforge.healing.explain import error_id_of, explain_error
    from kforge.monitoring.calls import record_call
    from kforge.monitoring.items import Item
    from kforge.text import use_encoder

    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    model = None
    if args.model:
        model = _model(ctx, args.model)
    elif ctx.paths.mlflow_db.exists():
        from kforge.healing.pyfunc import load_champion

        # None only without a champion (rules answer); a champion that cannot be read is an error, not "no model"
        model = load_champion(ctx.tracker())
    text = path.read_text(errors="replace")
    error_id = args.id or error_id_of(text)
    started = time.perf_counter()
    with use_encoder(ctx.text_encoder()):   # loaded only if the model has encoder members
        e = explain_error(text, model, error_id)
    if e.classified is not None:
        version = "file" if args.model else (ctx.tracker().version_of("kforge-healing") or "champion")
        items = _items([e.classified])
    else:  # rules only: the matched rule is still a prediction a fix row can follow or not
        version = "rules"
        items = [Item(error_id, "error_class", e.rule_id, e.rule_confidence)] if e.rule_id else []
    record_call(ctx.warehouse(), "healing", "kforge-healing", version, started, 1, batch_ref=f"explain:{path.name}",
                inputs=_descriptors([e.row]), items=items)
    print(f"error id: {error_id}")
    print(e.text)
    print(_strategy_ranking(ctx, e.rule_id or "unmatched").text)
    return 0


def _strategy_ranking(ctx: Ctx, error_class: str):  # noqa: ANN202 - imported lazily (mlflow is slow to import)
    """The error class's fix strategies by the champion bandit's posterior (static rule order without one)."""
    from kforge.healing.strategies import champion_bandit, strategy_ranking

    tracker = ctx.tracker()
    served = champion_bandit(tracker) if ctx.paths.mlflow_db.exists() or not tracker.is_local else None
    return strategy_ranking(error_class, served)


def cmd_evaluate(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.healing.report import run_evaluation

    if ctx.data is None or not (ctx.data / "healing").exists():
        raise InputError("evaluation needs the real data: pass --data DIR (laid out like ../shared/data) or set KFORGE_DATA")
    from contextlib import nullcontext

    from kforge.text import use_encoder

    with use_encoder(ctx.text_encoder()) if args.text_encoder else nullcontext():
        for section in run_evaluation(ctx.data, args.kind, args.folds, args.extras, args.generalizes,
                                      text_encoder=args.text_encoder):
            print(section, flush=True)
    return 0


def cmd_suggest(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.healing.corpus import run_corpus
    from kforge.healing.datasets import KERNEL, PYTHON, load_task
    from kforge.healing.rules import RuleEngine
    from kforge.healing.suggest import suggest_rules
    from kforge.jsonl import read_jsonl

    if args.input:
        rows = [r for _, r in read_jsonl(args.input)]
    elif ctx.data is not None and (ctx.data / "healing").exists():
        rows = load_task(ctx.data, KERNEL) + load_task(ctx.data, PYTHON)
    else:
        rows = run_corpus()
    for s in suggest_rules(rows, RuleEngine.default(), args.label, max_rules=args.max):
        print(json.dumps(s))
    return 0


def cmd_train(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.healing.train import ERRORS_TABLE, OUTCOMES_TABLE, store_corpus, train_and_release

    wh = ctx.warehouse()
    if not (wh.has_table(ERRORS_TABLE) and wh.has_table(OUTCOMES_TABLE)):
        store_corpus(wh)   # what the healing_corpus asset stores; later runs read the stored tables
    config = HealingConfig(data_dir=ctx.data, models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
                           test_share=args.test_share, seed=args.seed, replay_steps=args.replay_steps,
                           text_encoder=args.text_encoder)
    res = train_and_release(ctx.tracker(), wh, config, encoder=ctx.text_encoder() if args.text_encoder else None)
    for key in MODELS:
        r = getattr(res, key)
        if r is not None:
            print(json.dumps({"model": r.spec.name, "version": r.version, "decision": r.decision, "reason": r.reason,
                              r.spec.metric: round(r.challenger_score, 4),
                              **{f"baseline_{b}": round(v, 4) for b, v in r.baselines.items()}}))
    return 0


def cmd_anonymize(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.healing.anonymize import TEXT_FIELDS, Anonymizer, anonymize_file

    if not Path(args.input).is_file():
        raise InputError(f"{args.input}: no such file")
    fields = tuple(f.strip() for f in args.fields.split(",") if f.strip()) if args.fields else TEXT_FIELDS
    report = anonymize_file(args.input, args.output, Anonymizer.default(args.rules, home=ctx.paths.home), fields)
    what = f"{report.documents} rows" if report.jsonl else args.input
    done = ", ".join(f"{name} {n}" for name, n in sorted(report.counts.items())) or "nothing to replace"
    print(f"anonymized {what} -> {args.output} ({done})")
    return 0
