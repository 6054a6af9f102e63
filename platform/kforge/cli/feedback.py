"""``kforge feedback add FAMILY key=value ...`` and ``kforge feedback import FAMILY FILE``."""

import argparse

from kforge.cli.common import Ctx, print_table
from kforge.errors import InputError

_NO_ANON = ("store free text (crash logs, tracebacks) as given: by default e-mails, user names, addresses, hosts "
            "and secrets are scrubbed first (kforge healing anonymize), and each row records `anonymized`")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="record observed outcomes (append-only, validated)")
    fsub = p.add_subparsers(dest="feedback_cmd", metavar="ACTION")
    fsub.required = True
    a = fsub.add_parser("add", help="add one row: kforge feedback add FAMILY key=value ...")
    a.add_argument("family")
    a.add_argument("fields", nargs="+", metavar="KEY=VALUE")
    a.add_argument("--no-anonymize", action="store_true", help=_NO_ANON)
    a.set_defaults(func=cmd_add)
    i = fsub.add_parser("import", help="import a JSONL or CSV file (all rows valid, or nothing written; "
                                       "rows imported before are not written again)")
    i.add_argument("family")
    i.add_argument("file")
    i.add_argument("--no-anonymize", action="store_true", help=_NO_ANON)
    i.set_defaults(func=cmd_import)
    s = fsub.add_parser("schema", help="show what a family accepts")
    s.add_argument("family", nargs="?")
    s.set_defaults(func=cmd_schema)


def cmd_add(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.feedback import add_feedback

    row = {}
    for item in args.fields:
        if "=" not in item:
            raise InputError(f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        row[k.strip()] = v
    n = add_feedback(args.family, row, ctx.warehouse(), anonymize=not args.no_anonymize)
    print(f"recorded {n} {args.family} feedback row")
    return 0


def cmd_import(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.feedback.store import import_feedback_file

    res = import_feedback_file(args.family, args.file, ctx.warehouse(), anonymize=not args.no_anonymize)
    if res.added == 0:
        print(f"already imported: {res.already_imported} rows (nothing new in {args.file})")
    elif res.already_imported:
        print(f"recorded {res.added} new {args.family} feedback rows; already imported: {res.already_imported} rows")
    else:
        print(f"recorded {res.added} {args.family} feedback rows")
    return 0


def cmd_schema(ctx: Ctx, args: argparse.Namespace) -> int:
    import polars as pl

    from kforge.feedback import schemas

    for fam, schema in sorted(schemas().items()):
        if args.family and fam != args.family:
            continue
        print(f"{fam}: {schema.doc}")
        print_table(pl.DataFrame([{"field": f.name, "type": f.type, "required": f.required,
                                   "choices": ",".join(f.choices), "doc": f.doc} for f in schema.fields]))
    return 0
