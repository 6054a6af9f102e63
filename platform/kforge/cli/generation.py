"""Commands for the generation group: ``kforge generate message|patch`` and ``kforge train generation``."""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kforge.cli.common import Ctx, whole_number_in
from kforge.errors import InputError
from kforge.monitoring.calls import record_call
from kforge.text import use_encoder

if TYPE_CHECKING:
    from kforge.generation.corpus import CorpusConfig
    from kforge.generation.pipeline import GenerationConfig


def _family_subparsers(sub: argparse._SubParsersAction, name: str, help_: str) -> argparse._SubParsersAction:
    """``kforge NAME FAMILY ...`` may be shared by several families: reuse the parser if it exists."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_)
        nested = parser.add_subparsers(dest=f"{name}_family", metavar="FAMILY")
        nested.required = True
        return nested
    for action in parser._actions:  # another family registered it first
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"`kforge {name}` exists without family subcommands")


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("generate", help="draft a commit message from a diff, or a patch from an issue")
    gsub = gen.add_subparsers(dest="what", metavar="WHAT")
    gsub.required = True
    p = gsub.add_parser("message", help="commit message for a diff (format-patch-style output)")
    p.add_argument("--diff", required=True, metavar="FILE", help="unified diff (git diff / git format-patch output)")
    _model_args(p)
    p.set_defaults(func=cmd_message)
    p = gsub.add_parser("patch", help="message + diff skeleton drafted from an issue description")
    p.add_argument("--issue", required=True, metavar="TEXT", help="issue text, or @FILE to read it from a file")
    p.add_argument("--subsystem", default=None, help="force the subsystem instead of predicting it")
    p.add_argument("--repo", default=None, metavar="PATH",
                   help="a git repository: anchor the drafted hunks in its tree (drop those it does not contain)")
    p.add_argument("--rev", default="HEAD", help="the revision of --repo the patch is for (default HEAD)")
    p.add_argument("--file", default=None, metavar="PATH",
                   help="with --repo: draft one real hunk of this file (the focused patch task), written against "
                        "the lines of the file around --line at --rev")
    p.add_argument("--line", type=int, default=1, help="with --file: the line the change is about (default 1)")
    _model_args(p)
    p.set_defaults(func=cmd_patch)

    tsub = _family_subparsers(sub, "train", "train a model family outside Dagster")
    _train_args(tsub.add_parser("generation", help="train level 1, NNGen and the level-2 LM, evaluate, register, gate"))
    fam = sub.add_parser("generation", help="generation family (same as `kforge train generation`)")
    fsub = fam.add_subparsers(dest="generation_cmd", metavar="CMD")
    fsub.required = True
    _train_args(fsub.add_parser("train", help="train level 1, NNGen and the level-2 LM, evaluate, register, gate"))


def _train_args(t: argparse.ArgumentParser) -> None:
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the LM trains; auto (default): cuda when torch sees a GPU, else cpu (logged either way)")
    t.add_argument("--backbone", choices=("scratch", "smollm2"), default="scratch")
    t.add_argument("--diffs", nargs="*", default=None, metavar="FILE.parquet",
                   help="*.diffs.parquet files, instead of the warehouse's sources (default: every source the "
                        "warehouse knows: commit_diffs, reviewer feedback, and --extra-diffs)")
    t.add_argument("--extra-diffs", nargs="+", default=[], metavar="FILE.parquet",
                   help="*.diffs.parquet files added to the warehouse's sources: the diffs of commit tables loaded "
                        "by `kforge import-commits` from outside the data directory")
    t.add_argument("--max-rows", type=whole_number_in(0), default=0,
                   help="keep the most recent N cleaned commits (0 = all)")
    t.add_argument("--val-frac", type=float, default=0.1, help="share of commits (by time, after train) for calibration")
    t.add_argument("--test-frac", type=float, default=0.1, help="most recent share of commits held out for evaluation")
    t.add_argument("--budget", choices=("demo", "nightly"), default="nightly",
                   help="LM training budget when --steps, --budget-tokens and --epochs are 0: demo (86k tokens, the "
                        "demo's 40 CPU steps) or nightly (default: 12 epochs within 20 minutes of training; on CPU "
                        "the minutes bind and the schedule is fitted to them)")
    t.add_argument("--budget-tokens", type=int, default=0, help="train on about this many tokens (0: see --budget)")
    t.add_argument("--epochs", type=float, default=0.0, help="train for this many passes over the examples (0: see --budget)")
    t.add_argument("--steps", type=int, default=0, help="a fixed number of optimizer steps (0: see --budget)")
    t.add_argument("--batch-size", type=int, default=0, help="sequences per micro-batch (global); 0: 8 on cpu, 64 on cuda")
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--lr", type=float, default=0.0, help="peak learning rate; 0: 3e-3 x sqrt(batch x grad-accum / 8)")
    t.add_argument("--no-amp", action="store_true",
                   help="train in fp32 on CUDA too (default: bf16 autocast where supported, else fp16 with loss "
                        "scaling; CPU always trains in fp32)")
    t.add_argument("--d-model", type=int, default=192)
    t.add_argument("--layers", type=int, default=3)
    t.add_argument("--vocab", type=int, default=4096)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--max-len", type=int, default=384)
    t.add_argument("--eval-rows", type=int, default=200,
                   help="test rows decoded for the LM metrics (and to re-score the champion on the same rows)")
    t.add_argument("--calib-rows", type=int, default=100, help="validation rows generated to calibrate the confidence")
    t.add_argument("--adapters", type=int, default=2, help="LoRA adapters for the N largest subsystem families")
    t.add_argument("--adapter-steps", type=int, default=20, help="optimizer steps per LoRA adapter")
    t.add_argument("--retrieval", choices=("bow", "embedding", "hybrid"), default="bow",
                   help="how NNGen and the LM's neighbours are found: TF-IDF (bow, default: the embedding modes "
                        "lost the gated pair, docs/notes/issue-20-encoder-generation-rules.md), the pretrained "
                        "encoder, or both")
    t.add_argument("--level1-estimators", type=int, default=80, help="boosting rounds per level-1 head")
    t.add_argument("--max-minutes", type=float, default=0.0,
                   help="wall-clock budget of LM training: the schedule is fitted to it, training stops at it "
                        "(0: none, or the --budget's)")
    t.add_argument("--checkpoint-dir", default=None, help="checkpoint here; an existing checkpoint is resumed")
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--no-register", action="store_true", help="train and evaluate only")
    t.add_argument("--nproc", type=int, default=0, metavar="N",
                   help="data-parallel LM training on N local processes: re-runs this command under "
                        "`torchrun --standalone --nproc_per_node=N` (DDP; gloo on cpu, nccl on cuda). "
                        "--batch-size stays the global batch. Multi-node: run torchrun yourself (docs/scale-out.md)")
    t.set_defaults(func=cmd_train, train_parser=t)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", default=None,
                   help="a local copy of a bundle that this home's registry recorded (the registered LM's bundle/ "
                        "directory) instead of the registry; pickles that it did not record are refused unread")
    p.add_argument("--alias", default="champion", help="registry alias to load (default champion)")
    p.add_argument("--allow-challenger", action="store_true",
                   help="when there is no champion, serve the challenger (a version the release gate did not "
                        "promote) and say so on stderr")
    p.add_argument("--json", action="store_true", help="print JSON (text, subsystem, confidence, neighbours)")


def _load(ctx: Ctx, args: argparse.Namespace):  # noqa: ANN202
    """(bundle, a human-readable source, the registry version or "bundle"). The champion (or
    ``--alias``) only: a challenger the gate did not promote is served with ``--allow-challenger``."""
    from kforge.generation.bundle import Bundle

    if args.bundle:   # a user-given directory: its pickles load only if this home's registry recorded them
        from kforge.registry.trusted import reader

        return Bundle.load(Path(args.bundle), read=reader(ctx.tracker())), f"bundle {args.bundle}", "bundle"
    from kforge.generation.release import LM_NAME, registered_bundle
    from kforge.registry.aliases import CHALLENGER, get_alias

    tracker = ctx.tracker()
    got = registered_bundle(tracker, LM_NAME, args.alias)
    if got is not None:
        return got[0], f"{LM_NAME} v{got[1]} @{args.alias}", got[1]
    challenger = get_alias(tracker.client(), LM_NAME, CHALLENGER) if args.alias != CHALLENGER else None
    if challenger is None:
        raise InputError(f"no trained generation model: run `kforge train generation` or materialize the generation "
                         f"group (registry {ctx.paths.tracking_uri()} has no {LM_NAME} @{args.alias})")
    why = (challenger.tags or {}).get("kforge.gate.reason", "no gate decision recorded")
    if not args.allow_challenger:
        raise InputError(f"{LM_NAME} has no {args.alias!r} version; v{challenger.version} is only a challenger "
                         f"({why}); pass --allow-challenger to serve it anyway")
    got = registered_bundle(tracker, LM_NAME, CHALLENGER)
    if got is None:
        raise InputError(f"{LM_NAME}'s challenger v{challenger.version} could not be loaded")
    print(f"kforge: note: {LM_NAME} has no {args.alias!r} version; serving challenger v{got[1]}, which the release "
          f"gate did not promote ({why})", file=sys.stderr)
    return got[0], f"{LM_NAME} v{got[1]} @{CHALLENGER} (no {args.alias}; not promoted)", got[1]


def _record(ctx: Ctx, version: int | str, started: float, gen, diff: str | None, kind: str) -> None:  # noqa: ANN001
    """Monitoring: the call, the diff's descriptors (drift), and the message as an item that a
    reviewer's accept/edit/reject feedback is joined to."""
    from kforge.monitoring.descriptors import diff_descriptors
    from kforge.monitoring.items import Item, message_key

    record_call(ctx.warehouse(), "generation", "kforge-generation-lm", version, started, 1, batch_ref=kind,
                inputs=diff_descriptors([diff]) if diff is not None else None,
                items=[Item(message_key(gen.text), "message", gen.subsystem, gen.confidence)])


def _reference(ctx: Ctx, version: int, corpus) -> None:  # noqa: ANN001
    from kforge.generation.monitoring import set_diff_reference

    set_diff_reference(ctx.warehouse(), version, corpus)


def _emit(gen, args: argparse.Namespace) -> int:  # noqa: ANN001
    if args.json:
        print(json.dumps({"text": gen.text, "subsystem": gen.subsystem, "subsystem_confidence": gen.subsystem_conf,
                          "confidence": gen.confidence, "neighbours": gen.neighbours, "adapter": gen.adapter}))
    else:
        sys.stdout.write(gen.text)
    return 0


def cmd_message(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.generation.service import generate_message, read_diff

    diff = read_diff(args.diff)
    bundle, source, version = _load(ctx, args)
    started = time.perf_counter()
    with use_encoder(ctx.text_encoder()):   # an index in an embedding mode embeds the query
        gen = generate_message(bundle, diff, source)
    _record(ctx, version, started, gen, diff, "message")
    return _emit(gen, args)


def cmd_patch(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.generation.service import generate_hunk, generate_patch

    issue = args.issue
    if issue.startswith("@"):
        f = Path(issue[1:])
        if not f.exists():
            raise InputError(f"{f}: no such file")
        issue = f.read_text(errors="replace")
    read_file = None
    if args.repo:
        from kforge.generation.patch_repair import tree_reader
        from kforge.git.gitcmd import check_repository, resolve_ref

        repo = check_repository(args.repo)
        rev = resolve_ref(repo, args.rev)
        if rev is None:
            raise InputError(f"{args.rev!r} is not a commit in {repo}")
        read_file = tree_reader(repo, rev)
    if args.file and read_file is None:
        raise InputError("--file needs --repo (the tree whose lines the hunk is written against)")
    bundle, source, version = _load(ctx, args)
    started = time.perf_counter()
    with use_encoder(ctx.text_encoder()):
        if args.file:
            assert read_file is not None
            gen = generate_hunk(bundle, issue, args.file, args.line, read_file, source, args.subsystem)
        else:
            gen = generate_patch(bundle, issue, args.subsystem, source, read_file=read_file)
    _record(ctx, version, started, gen, None, "patch")
    return _emit(gen, args)


def _worker_argv(ctx: Ctx, args: argparse.Namespace) -> list[str]:
    """This ``train generation`` command line for the torchrun workers (without ``--nproc``)."""
    out = ["--home", str(ctx.paths.home), *(["--data", str(ctx.data)] if ctx.data else []), "train", "generation"]
    for a in args.train_parser._actions:
        if not a.option_strings or a.dest in ("help", "nproc") or getattr(args, a.dest) == a.default:
            continue
        value, flag = getattr(args, a.dest), a.option_strings[-1]
        if isinstance(a, argparse._StoreTrueAction):
            out.append(flag)
        elif a.nargs == "*":
            out += [flag, *map(str, value)]
        else:
            out += [flag, str(value)]
    return out


def _spawn_torchrun(ctx: Ctx, args: argparse.Namespace) -> int:
    import os
    import subprocess

    from kforge.errors import KforgeError
    from kforge.generation.device import default_batch_size, resolve_device
    from kforge.generation.distributed import torchrun_command

    batch = args.batch_size or default_batch_size(resolve_device(args.device))
    if batch < args.nproc:
        raise InputError(f"--batch-size {batch} is the global batch: it must be >= --nproc {args.nproc}")
    cmd = torchrun_command(args.nproc, "kforge.cli.main", _worker_argv(ctx, args))
    print(f"kforge: {' '.join(cmd)}", file=sys.stderr, flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, args.threads)))}
    rc = subprocess.run(cmd, env=env, check=False).returncode
    if rc:
        raise KforgeError(f"torchrun exited with status {rc}: see the rank errors above")
    return 0


def cmd_train(ctx: Ctx, args: argparse.Namespace) -> int:
    from kforge.generation import distributed
    from kforge.generation.device import resolve_device

    if args.nproc and not distributed.launched():
        return _spawn_torchrun(ctx, args)
    # under torchrun every rank runs the whole command (same corpus, tokenizer and examples);
    # the LM and adapter training steps are data-parallel, and only rank 0 prints, logs and registers
    with distributed.process_group(resolve_device(args.device)) as denv, use_encoder(ctx.text_encoder()):
        return _train_generation(ctx, args, denv.main)


def train_config(args: argparse.Namespace) -> "tuple[CorpusConfig, GenerationConfig]":
    """``kforge train generation``'s options as the library's configs (the asset maps its ``Config`` the same way)."""
    from kforge.generation.corpus import CorpusConfig
    from kforge.generation.pipeline import GenerationConfig

    if args.diffs and args.extra_diffs:
        raise InputError("--diffs replaces the warehouse's sources and --extra-diffs adds to them: give one of them")
    corpus = CorpusConfig.from_flat(val_frac=args.val_frac, test_frac=args.test_frac, max_rows=args.max_rows,
                                    diff_files=args.extra_diffs)
    cfg = GenerationConfig.from_flat(
        backbone=args.backbone, device=args.device, budget=args.budget, steps=args.steps,
        budget_tokens=args.budget_tokens, epochs=args.epochs, batch_size=args.batch_size,
        grad_accum=args.grad_accum, lr=args.lr, amp=not args.no_amp, max_minutes=args.max_minutes, threads=args.threads,
        checkpoint_dir=args.checkpoint_dir or "", resume=not args.no_resume, d_model=args.d_model,
        n_layers=args.layers, n_heads=args.heads, vocab_size=args.vocab, max_len=args.max_len,
        level1_estimators=args.level1_estimators, eval_rows=args.eval_rows, calib_rows=args.calib_rows,
        adapter_families=args.adapters, adapter_steps=args.adapter_steps, retrieval=args.retrieval)
    return corpus, cfg


def _train_generation(ctx: Ctx, args: argparse.Namespace, main: bool) -> int:
    from kforge.generation.corpus import corpus_for, load_from_parquet
    from kforge.generation.release import train_and_release
    from kforge.git.ingest import registered_repositories

    wh = ctx.warehouse()
    corpus_cfg, cfg = train_config(args)
    corpus, rep = corpus_for(wh, corpus_cfg, load_from_parquet([Path(f) for f in args.diffs]) if args.diffs else None)
    if main:
        print(json.dumps({"corpus": rep.as_dict()}), flush=True)
    repos = {r: p for r, p in registered_repositories(wh).items() if p.exists()}
    register = main and not args.no_register
    out = train_and_release(ctx.tracker() if register else None, corpus, cfg, repos=repos,
                            log=(lambda s: print(s, file=sys.stderr, flush=True)) if main else (lambda s: None))
    if not main:
        return 0
    report: dict[str, object] = {"metrics": out.result.metrics}
    if out.lm is not None:
        _reference(ctx, out.lm.version, corpus)
        report |= {"run_id": out.lm.run_id, "lm_version": out.lm.version, "release": out.summary()}
    print(json.dumps(report, default=float, indent=1))
    return 0
