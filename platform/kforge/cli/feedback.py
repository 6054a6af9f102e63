"""``kforge feedback add FAMILY key=value ...`` and ``kforge feedback import FAMILY FILE``."""

import argparse

from kforge.cli.common import Ctx, print_table
from kforge.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("feedback", help="record observed outcomes (append-only, validated)")
    fsub = p.add_subparsers(dest="feedback_cmd", metavar="ACTION")
    fsub.required = True
    a = fsub.add_parser("add", help="add one row: kforge feedback add FAMILY key=value ...")
    a.add_argument("family")
    a.add_argument("fields", nargs="+", metavar="KEY=VALUE")
    a.set_defaults(func=cmd_add)
    i = fsub.add_parser("import", help="import a JSONL or CSV file (all rows valid, or nothing written)")
    i.add_argument("family")
    i.add_argument("file")
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
    n = add_feedback(args.family, row, ctx.warehouse())
    print(f"recorded {n} {args.family} feedback row")
    return 0


def cmd_import(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.feedback import import_feedback

    n = import_feedback(args.family, args.file, ctx.warehouse())
    print(f"recorded {n} {args.family} feedback rows")
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
