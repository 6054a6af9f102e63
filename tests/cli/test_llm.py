"""``kforge llm ask`` / ``kforge llm serve``: answers with provenance over the real HTTP path, and one
error line for everything a user can get wrong."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kforge.cli.main import main
from kforge.llm.base import GenParams
from kforge.llm.http import OllamaBackend
from kforge.llm.scripted import ScriptedBackend
from kforge.llm.server import LLMServer


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_ask_json_has_provenance(kind, tmp_path: Path, capsys) -> None:
    backend = ScriptedBackend("An OOM kill frees memory by ending a process.")
    with LLMServer(backend) as srv:
        rc = main(["--home", str(tmp_path / "h"), "llm", "ask", "What is an OOM kill?", "--backend", kind,
                   "--base-url", srv.url, "--model", "tiny", "--max-tokens", "12", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["text"] == "An OOM kill frees memory by ending a process."
    assert out["backend"] == kind and out["model"] == "scripted-1" and len(out["template_hash"]) == 64
    assert out["params"] == {"max_tokens": 12, "temperature": 0.0, "seed": 0}
    assert backend.calls[0][1] == "What is an OOM kill?"


def test_ask_reads_the_backend_from_the_environment(tmp_path: Path, capsys, monkeypatch) -> None:
    with LLMServer(ScriptedBackend("hi")) as srv:
        monkeypatch.setenv("KFORGE_LLM_BACKEND", "ollama")
        monkeypatch.setenv("KFORGE_LLM_BASE_URL", srv.url)
        assert main(["--home", str(tmp_path / "h"), "llm", "ask", "hello"]) == 0
    assert capsys.readouterr().out == "hi\n"


@pytest.mark.parametrize(("args", "needle"), [
    (["--backend", "openai", "--base-url", "http://127.0.0.1:9"], "cannot reach the LLM server at http://127.0.0.1:9"),
    (["--backend", "openai"], "needs a server: pass --base-url"),
    (["--backend", "gpt5"], "invalid choice"),
    (["--backend", "ollama", "--base-url", "localhost:11434"], "must start with http://"),
    (["--max-tokens", "0"], "max tokens must be within 1..4096"),
    (["--temperature", "nan"], "finite number"),
])
def test_ask_errors_are_one_line(args, needle, tmp_path: Path, capsys) -> None:
    rc = main(["--home", str(tmp_path / "h"), "llm", "ask", "q", *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("kforge: error:") and err.count("\n") == 1 and needle in err, err


def test_serve_relays_a_configured_backend_through_both_apis(tmp_path: Path) -> None:
    """``kforge llm serve --backend openai --base-url U`` in a subprocess: two real HTTP hops."""
    with LLMServer(ScriptedBackend("relayed")) as upstream:
        env = {**os.environ, "KFORGE_HOME": str(tmp_path / "h")}
        proc = subprocess.Popen([sys.executable, "-m", "kforge.cli.main", "llm", "serve", "--port", "0",
                                 "--backend", "openai", "--base-url", upstream.url, "--model", "m"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            info = json.loads(proc.stdout.readline())
            ans = OllamaBackend(info["url"], "m").complete("s", "u", GenParams(max_tokens=4))
            assert ans.text == "relayed" and ans.model == "scripted-1"
            assert info["backend"] == "openai" and "/api/generate" in info["routes"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
