"""The OpenAI and Ollama clients against kforge's own server on 127.0.0.1 (real HTTP), provenance,
and one clear error for every way a server can fail."""

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kforge.errors import InputError
from kforge.llm.base import GenParams, LLMConfig, PromptTemplate, ask, make_backend
from kforge.llm.http import OllamaBackend, OpenAIBackend
from kforge.llm.server import LLMServer

TPL = PromptTemplate("t", system="Be terse about {topic}.", user="Rate: {text}")


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_both_apis_round_trip_through_the_server(kind, server, scripted) -> None:
    backend = make_backend(LLMConfig(backend=kind, base_url=server.url, model="whatever"))
    ans = ask(backend, TPL, {"topic": "commits", "text": "net/ice: fix leak"}, GenParams(max_tokens=7, temperature=0.0, seed=3))
    assert ans.text == "score: 4\nreason: clear subject"
    assert ans.backend == kind and ans.model == "scripted-1"            # the model the server reports
    system, user, params = scripted.calls[-1]
    assert system == "Be terse about commits." and user == "Rate: net/ice: fix leak"
    assert params == GenParams(max_tokens=7, temperature=0.0, seed=3)  # parameters crossed the wire


def test_provenance_is_the_template_hash_and_parameters(server) -> None:
    backend = OpenAIBackend(server.url, "m")
    a = ask(backend, TPL, {"topic": "x", "text": "y"}, GenParams(max_tokens=5))
    assert a.template_hash == hashlib.sha256(TPL.text.encode()).hexdigest()
    assert a.provenance() == {"model": "scripted-1", "backend": "openai", "template": "t",
                              "template_hash": a.template_hash, "params": {"max_tokens": 5, "temperature": 0.0, "seed": 0}}
    other = PromptTemplate("t", system=TPL.system, user=TPL.user + " ")
    assert ask(backend, other, {"topic": "x", "text": "y"}, GenParams(max_tokens=5)).template_hash != a.template_hash
    assert json.loads(json.dumps(a.to_dict()))["params"]["max_tokens"] == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Bad(BaseHTTPRequestHandler):
    body = b"<html>not an llm</html>"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a: object) -> None:
        return


@pytest.fixture()
def bad_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Bad)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("cls", [OpenAIBackend, OllamaBackend])
def test_no_server_is_one_clear_error(cls) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(InputError, match="cannot reach the LLM server") as exc:
        cls(url, "m").complete("s", "u", GenParams(max_tokens=2))
    assert "\n" not in str(exc.value) and url in str(exc.value)


@pytest.mark.parametrize("cls", [OpenAIBackend, OllamaBackend])
def test_a_reply_that_is_not_json_is_one_clear_error(cls, bad_server) -> None:
    with pytest.raises(InputError, match="not JSON"):
        cls(bad_server, "m").complete("s", "u", GenParams(max_tokens=2))


def test_the_wrong_api_and_bad_requests_are_clear(server) -> None:
    with pytest.raises(InputError, match="HTTP 404"):
        OpenAIBackend(server.url + "/api", "m").complete("s", "u", GenParams())
    with pytest.raises(InputError, match="HTTP 400"):
        OllamaBackend(server.url, "m").complete("s", "u", GenParams(max_tokens=0))   # refused by the server


def test_config_errors() -> None:
    with pytest.raises(InputError, match="unknown LLM backend"):
        make_backend(LLMConfig(backend="gpt"))
    with pytest.raises(InputError, match="needs a server"):
        make_backend(LLMConfig(backend="openai"))
    with pytest.raises(InputError, match="http://"):
        make_backend(LLMConfig(backend="ollama", base_url="ftp://x"))
    assert make_backend(LLMConfig(backend="ollama")).base_url == "http://127.0.0.1:11434"


def test_server_refuses_a_port_in_use(scripted) -> None:
    with LLMServer(scripted) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        with pytest.raises(InputError, match="cannot listen"):
            LLMServer(scripted, port=port)


def test_resource_defaults_to_embedded_and_reaches_a_server(server) -> None:
    from kforge.dagster_io.resources import LLMResource
    from kforge.llm.embedded import EmbeddedBackend

    assert isinstance(LLMResource().get(), EmbeddedBackend)           # nothing is loaded until it answers
    res = LLMResource(backend="openai", base_url=server.url, model="m")
    assert ask(res.get(), TPL, {"topic": "a", "text": "b"}).backend == "openai"
