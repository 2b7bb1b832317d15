"""The `openai` chat engine against a real OpenAI-compatible server: vLLM's, on loopback, serving
the tiny LM. A small forwarding proxy in front of it counts requests and injects failures."""
from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import OPENAI_MODEL, free_port
from scalequest.engines.answer_cache import AnswerCache, request_key
from scalequest.engines.base import Completion, Sampling
from scalequest.engines.openai_engine import EndpointError, OpenAIChatEngine, check_endpoint, retry_after
from scalequest.models import ModelSpec

KEY_ENV = "SCALEQUEST_TEST_OPENAI_KEY"
SAMPLING = Sampling(temperature=0.7, top_p=0.95, max_tokens=32, seed=100)
TOO_LONG = [{"role": "user", "content": "What is 1 + 1? " * 600}]


def conversation(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Tom has {i} apples and buys {i + 3} more. How many apples does he have?"}]


def spec(base_url: str, **options) -> ModelSpec:
    return ModelSpec(key="optimizer", path=OPENAI_MODEL, engine="openai", base_url=base_url, api_key_env=KEY_ENV,
                     **options)


@pytest.fixture(scope="module")
def server(openai_server):
    return openai_server


class Proxy(ThreadingHTTPServer):
    """Forwards every request to the server, counting them and recording chat exchanges; the
    queued `failures` (status, headers) are answered by the proxy itself, first."""

    daemon_threads = True

    def __init__(self, upstream_port: int):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.in_flight = self.max_in_flight = 0
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.exchanges: list[tuple[dict, dict]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ProxyHandler(BaseHTTPRequestHandler):
    server: Proxy

    def do_GET(self) -> None:
        self.relay()

    def do_POST(self) -> None:
        self.relay()

    def log_message(self, *args) -> None:
        """Quiet: the tests read stderr."""

    def relay(self) -> None:
        proxy = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with proxy.lock:
            proxy.requests += 1
            proxy.in_flight += 1
            proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
            failure = proxy.failures.pop(0) if proxy.failures else None
        try:
            if failure is None:
                status, headers, payload = self.forward(body)
            else:
                status, headers = failure
                payload = json.dumps({"error": {"message": "injected failure", "code": status}}).encode()
        finally:
            with proxy.lock:
                proxy.in_flight -= 1
        if failure is None and self.command == "POST" and status == 200:
            with proxy.lock:
                proxy.exchanges.append((json.loads(body), json.loads(payload)))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        headers = {name: self.headers[name] for name in ("Authorization", "Content-Type") if name in self.headers}
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            return response.status, {}, response.read()
        finally:
            upstream.close()


@pytest.fixture(scope="module")
def running_proxy(server):
    proxy = Proxy(server.port)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


@pytest.fixture
def proxy(running_proxy):
    running_proxy.reset()
    return running_proxy


@pytest.fixture
def api_key(server, monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, server.key)
    return server.key


def assert_key_absent(key: str, capfd, *folders: Path) -> str:
    """The key is in no file under `folders` nor in this test's stdout/stderr; returns stderr."""
    captured = capfd.readouterr()
    assert key not in captured.out and key not in captured.err
    for folder in folders:
        for path in folder.rglob("*"):
            assert not path.is_file() or key not in path.read_text(), path
    return captured.err


@pytest.mark.vllm
def test_concurrent_replies_come_back_in_input_order(proxy, api_key, capfd):
    conversations = [conversation(i) for i in range(8)]
    with OpenAIChatEngine(spec(proxy.base_url, concurrency=4)) as engine:
        results = engine.chat(conversations, SAMPLING)
    assert all(isinstance(r, Completion) and r.text and r.tokens > 0 for r in results), results
    assert proxy.requests == len(conversations) and proxy.max_in_flight > 1
    # Each reply is the one the server gave to that conversation, sent with seed + its index.
    sent = {json.dumps(request["messages"]): (request, response) for request, response in proxy.exchanges}
    for index, (messages, result) in enumerate(zip(conversations, results)):
        request, response = sent[json.dumps(messages)]
        assert request["seed"] == SAMPLING.seed + index
        assert result.text == response["choices"][0]["message"]["content"]
        assert result.tokens == response["usage"]["completion_tokens"]
        assert result.finished == (response["choices"][0]["finish_reason"] == "stop")
    stderr = assert_key_absent(api_key, capfd)
    assert "req/s" in stderr and "cached=0" in stderr


@pytest.mark.vllm
def test_too_long_conversation_is_none(server, api_key):
    with OpenAIChatEngine(spec(server.base_url)) as engine:
        results = engine.chat([conversation(1), TOO_LONG, conversation(2)], SAMPLING)
    assert results[0] is not None and results[1] is None and results[2] is not None


@pytest.mark.vllm
def test_restart_answers_from_cache_without_http(server, proxy, api_key, tmp_path, capfd):
    conversations = [conversation(1), TOO_LONG, conversation(2), conversation(3)]
    with OpenAIChatEngine(spec(server.base_url, concurrency=3), cache_dir=tmp_path) as engine:
        first = engine.chat(conversations, SAMPLING)
    assert first[1] is None
    with OpenAIChatEngine(spec(proxy.base_url), cache_dir=tmp_path) as engine:
        assert engine.chat(conversations, SAMPLING) == first
        assert proxy.requests == 0
        # A job killed midway: what it answered comes from the cache, only the rest is sent.
        assert engine.chat(conversations + [conversation(4)], SAMPLING)[:4] == first
        assert proxy.requests == 1
    entries = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(entries) == 5 and all(p.suffix == ".json" for p in entries)
    assert "cached=4" in assert_key_absent(api_key, capfd, tmp_path)


@pytest.mark.vllm
def test_retries_503_and_429_with_retry_after(proxy, api_key, capfd):
    proxy.failures = [(503, {}), (429, {"Retry-After": "1"}), (502, {})]
    start = time.monotonic()
    with OpenAIChatEngine(spec(proxy.base_url, concurrency=1, max_retries=3), backoff=0.01) as engine:
        results = engine.chat([conversation(1)], SAMPLING)
    assert results[0] is not None and proxy.requests == 4
    assert time.monotonic() - start >= 1.0  # the 429's Retry-After, not the 10 ms backoff
    assert "retries=3" in assert_key_absent(api_key, capfd)


@pytest.mark.vllm
def test_gives_up_after_max_retries_with_a_clear_error(proxy, api_key, capfd):
    proxy.failures = [(503, {})] * 3
    with OpenAIChatEngine(spec(proxy.base_url, max_retries=1), backoff=0.01) as engine, \
            pytest.raises(EndpointError) as raised:
        engine.chat([conversation(1)], SAMPLING)
    message = str(raised.value)
    assert proxy.requests == 2
    assert all(part in message
               for part in ("optimizer", OPENAI_MODEL, proxy.base_url, "HTTP 503", "max_retries=1")), message
    assert api_key not in message
    assert_key_absent(api_key, capfd)


@pytest.mark.vllm
def test_rejected_request_is_not_retried(server, proxy, monkeypatch, capfd):
    wrong_key = f"sk-wrong-{secrets.token_hex(8)}"
    monkeypatch.setenv(KEY_ENV, wrong_key)
    with OpenAIChatEngine(spec(proxy.base_url), backoff=0.01) as engine, \
            pytest.raises(EndpointError, match="HTTP 401") as raised:
        engine.chat([conversation(1)], SAMPLING)
    assert proxy.requests == 1 and wrong_key not in str(raised.value)
    assert_key_absent(wrong_key, capfd)


@pytest.mark.vllm
def test_check_endpoint_accepts_a_serving_endpoint(server, api_key):
    check_endpoint(spec(server.base_url))


@pytest.mark.vllm
def test_check_endpoint_lists_what_is_served(server, api_key):
    with pytest.raises(EndpointError, match=f"does not serve 'gpt-4o-mini'; it serves: {OPENAI_MODEL}"):
        check_endpoint(ModelSpec(key="optimizer", path="gpt-4o-mini", engine="openai", base_url=server.base_url,
                                 api_key_env=KEY_ENV))


@pytest.mark.vllm
def test_check_endpoint_names_a_rejected_key(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-not-the-key")
    with pytest.raises(EndpointError, match=f"HTTP 401 \\(is {KEY_ENV} the right key\\?\\)") as raised:
        check_endpoint(spec(server.base_url))
    assert "sk-not-the-key" not in str(raised.value)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_check_endpoint_needs_the_key_variable(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(EndpointError, match=f"model 'optimizer': the environment variable {KEY_ENV}"):
        check_endpoint(spec("http://127.0.0.1:1/v1"))


def test_check_endpoint_names_an_unreachable_endpoint(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-anything")
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EndpointError, match=f"cannot reach {base_url}"):
        check_endpoint(spec(base_url), timeout=2)


def test_retry_after_forms():
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert 8 < retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after({"retry-after": formatdate(time.time() - 10, usegmt=True)}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_answer_cache_key_and_round_trip(tmp_path):
    request = {"model": OPENAI_MODEL, "messages": conversation(1), "seed": 1, "stop": []}
    assert request_key(request) == request_key(dict(reversed(list(request.items()))))
    assert request_key(request) != request_key({**request, "seed": 2})
    cache = AnswerCache(tmp_path)
    assert cache.get(request) is None
    cache.put(request, {"completion": None})
    assert cache.get(request) == {"completion": None} and cache.get({**request, "seed": 2}) is None
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{request_key(request)}.json"]
