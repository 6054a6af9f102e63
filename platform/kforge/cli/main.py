"""Entry point: ``kforge [--home DIR] [--data DIR] COMMAND ...``.

User errors (``KforgeError``) print one clear line to stderr and exit 2; nothing is half-written
because every write goes through the warehouse's transactional path.
"""

import argparse
import importlib
import pkgutil
import sys

import kforge.cli as cli_pkg
from kforge.cli.common import Ctx
from kforge.errors import KforgeError

_NOT_COMMANDS = {"main", "common"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kforge", description="kforge: ML platform for software-engineering intelligence")
    parser.add_argument("--home", default=None, help="kforge home (default: $KFORGE_HOME, else ./.kforge)")
    parser.add_argument("--data", default=None,
                        help="real-data directory laid out like ../shared/data (default: $KFORGE_DATA; unset = embedded defaults)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda i: i.name):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"kforge.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ctx = Ctx.from_args(args)
        rc = args.func(ctx, args)
        return int(rc or 0)
    except KforgeError as exc:
        print(f"kforge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
