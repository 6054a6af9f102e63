"""``kforge export MODE --out FILE.jsonl [filters]``: training-data exports."""

import argparse
import json

from kforge.cli.common import Ctx
from kforge.cli.llm import add_llm_options, backend_from_args


def _list(s: str | None) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()] if s else []


def register(sub: argparse._SubParsersAction) -> None:
    from kforge.commits.export import MODES

    p = sub.add_parser("export", help="write a training-data export (JSONL + axolotl-style YAML)")
    p.add_argument("mode", choices=MODES)
    p.add_argument("--out", required=True, help="output FILE.jsonl")
    p.add_argument("--min-quality", type=float, default=0.0, help="minimum heuristic quality score (0..1)")
    p.add_argument("--tags", default=None, help="keep commits with any of these tags (comma-separated)")
    p.add_argument("--exclude-tags", default=None, help="drop commits with any of these tags")
    p.add_argument("--subsystems", default=None, help="keep these subsystems / subject prefixes")
    p.add_argument("--repos", default=None, help="keep these repositories")
    p.add_argument("--since", default=None, help="YYYY-MM-DD (author date)")
    p.add_argument("--until", default=None, help="YYYY-MM-DD (author date)")
    p.add_argument("--limit", type=int, default=None, help="keep the newest N rows")
    p.add_argument("--test-fraction", type=float, default=0.1, help="newest fraction marked split=test")
    p.add_argument("--llm-score", action="store_true",
                   help="add llm_score (1-5) and llm_reason from the configured language model to rows above --llm-floor")
    p.add_argument("--llm-floor", type=float, default=0.5, help="heuristic quality a row needs to be LLM-scored (0..1)")
    add_llm_options(p, max_tokens=48)
    p.set_defaults(func=cmd_export)


def cmd_export(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.commits.export import ExportFilters, build_export, validate_export, write_export

    f = ExportFilters(min_quality=args.min_quality, tags=_list(args.tags), exclude_tags=_list(args.exclude_tags),
                      subsystems=_list(args.subsystems), repos=_list(args.repos), since=args.since, until=args.until,
                      limit=args.limit, test_fraction=args.test_fraction)
    rows = build_export(ctx.warehouse(), args.mode, f)
    llm = None
    if args.llm_score:
        from kforge.commits.quality import llm_quality

        backend, params = backend_from_args(args)
        rows, llm = llm_quality(rows, backend, args.llm_floor, params)
    summary = write_export(rows, args.out, args.mode)
    if llm is not None:
        summary["llm"] = llm
    summary["problems"] = validate_export(args.out)
    print(json.dumps(summary))
    return 0 if not summary["problems"] else 1
