"""``kforge llm ask "..."`` and ``kforge llm serve``: the configured language model.

The backend options (:func:`add_llm_options`) are shared with ``kforge export --llm-score`` and
``kforge telemetry explain``; unset options fall back to ``KFORGE_LLM_*`` and then the embedded
SmolLM2-135M-Instruct.
"""

import argparse
import json
import sys

from kforge.cli.common import Ctx
from kforge.llm.base import BACKENDS, Backend, GenParams, LLMConfig, PromptTemplate, ask, make_backend

ASK = PromptTemplate("ask", system="You are a concise assistant for Linux kernel and DPDK engineers.", user="{question}")


def add_llm_options(p: argparse.ArgumentParser, max_tokens: int = 128) -> None:
    """``--backend --base-url --model --max-tokens --temperature --llm-timeout``."""
    g = p.add_argument_group("language model (default: $KFORGE_LLM_BACKEND, else the embedded SmolLM2-135M)")
    g.add_argument("--backend", choices=BACKENDS, default=None, help="embedded | openai | ollama")
    g.add_argument("--base-url", default=None, help="server URL (openai-compatible or ollama)")
    g.add_argument("--model", dest="llm_model", default=None, help="model name on the server")
    g.add_argument("--max-tokens", type=int, default=max_tokens, help="tokens to generate at most")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (reproducible)")
    g.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per request")


def backend_from_args(args: argparse.Namespace) -> tuple[Backend, GenParams]:
    cfg = LLMConfig.from_env(backend=args.backend, base_url=args.base_url, model=args.llm_model,
                             timeout_s=args.llm_timeout)
    params = GenParams(max_tokens=args.max_tokens, temperature=args.temperature)
    params.check()
    return make_backend(cfg), params


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("llm", help="ask the configured language model, or serve it over HTTP")
    t = p.add_subparsers(dest="llm_cmd", metavar="ACTION")
    t.required = True
    a = t.add_parser("ask", help="answer a question with the configured backend")
    a.add_argument("question")
    a.add_argument("--json", action="store_true", help="print the answer with its provenance as JSON")
    add_llm_options(a)
    a.set_defaults(func=cmd_ask, creates_home=False)
    s = t.add_parser("serve", help="serve a backend through the OpenAI and Ollama APIs on 127.0.0.1")
    s.add_argument("--port", type=int, default=8089)
    add_llm_options(s)
    s.set_defaults(func=cmd_serve, creates_home=False)


def cmd_ask(ctx: Ctx, args: argparse.Namespace) -> int:
    backend, params = backend_from_args(args)
    answer = ask(backend, ASK, {"question": args.question}, params)
    print(json.dumps(answer.to_dict()) if args.json else answer.text)
    return 0


def cmd_serve(ctx: Ctx, args: argparse.Namespace) -> int:
    import time

    from kforge.llm.server import LLMServer

    backend, _ = backend_from_args(args)
    with LLMServer(backend, port=args.port) as srv:
        print(json.dumps({"url": srv.url, "backend": backend.name, "model": backend.model,
                          "routes": ["/v1/chat/completions", "/api/generate", "/v1/models", "/api/tags"]}))
        sys.stdout.flush()
        while True:
            time.sleep(3600)
