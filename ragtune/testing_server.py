"""A real, loopback, OpenAI-compatible HTTP server with fault injection, for tests.

It listens on 127.0.0.1 (an ephemeral port) in a daemon thread, speaks enough of the OpenAI API
for `ragtune.llm.openai.OpenAILM` (and anything else that talks to a "teacher" endpoint), and can
be told to misbehave on purpose, one fault per incoming chat request:

    from ragtune.testing_server import FakeOpenAIServer
    from ragtune.llm.openai import OpenAILM

    with FakeOpenAIServer(reply=["Paris.", "Berlin."], faults=["429", "500", "ok"]) as srv:
        lm = OpenAILM("fake-model", srv.base_url, backoff_base=0.01)   # srv.base_url ends in /v1
        [c] = lm.generate([[{"role": "user", "content": "Capital of France?"}]])
        assert c.text == "Paris."
        assert srv.fault_log == ["429", "500", "ok"]   # what each chat request got
        assert len(srv.requests) == 3                  # (path, parsed JSON body) of every request

Endpoints
    POST /v1/chat/completions   OpenAI-shaped reply; the text comes from `reply`: a callable
                                `(messages) -> str`, or a list of strings used cyclically; by
                                default "echo: " + the last user message. `max_tokens` truncates
                                the reply to that many whitespace words (finish_reason "length")
                                and `stop` cuts it at the earliest stop string. Token counts are
                                whitespace word counts.
    GET  /v1/models             a list holding `model`.
    POST /v1/completions        with `echo` + `logprobs`: a deterministic fake logprobs object:
                                tokens are the prompt split on whitespace with leading whitespace
                                kept (" world"), token_logprobs[i] = -0.1 * len(tokens[i]), and
                                text_offset the character offset of each token. Without echo: a
                                plain text completion. `supports_logprobs=False` makes echo+logprobs
                                answer 400, like endpoints that cannot score.

Faults (a list consumed in order, one per chat request; afterwards every request is "ok")
    "ok"         answer normally
    "429"        429 with `Retry-After: <retry_after>` (default "0"); "429:2" sets it to 2 here
    "500", "502", "503", "504"   a server error (503 also carries Retry-After)
    "timeout"    wait `timeout_sleep` seconds (default 2.0), then answer normally
    "malformed"  200 with the JSON body {"nonsense": true}
    "badjson"    200 with a body that is not JSON at all
    "drop"       close the connection without sending any response
    "400ctx"     400 with an OpenAI-style error about the maximum context length
    "400"        400 with an OpenAI-style "invalid request" error
    "401"        401 invalid API key
    "404"        404 model not found

Streaming: a chat request with `stream: true` gets Server-Sent Events as OpenAI sends them: a
role chunk, the reply one whitespace word a chunk (`stream_delay` seconds apart), a chunk with
`finish_reason`, a usage chunk when `stream_options.include_usage` is set, then `data: [DONE]`.
The fault "cut" sends the role chunk and the first two words, then closes the connection (a
stream that breaks after its first bytes); every other fault answers before any event.

Knobs for endpoints that cut corners: `honour_stop=False` ignores `stop` (clients must truncate
themselves), `include_usage=False` leaves `usage` out of chat replies. `reject_max_tokens=True`
answers a chat request that carries `max_tokens` with OpenAI's 400 for newer models ("Use
'max_completion_tokens' instead"; no fault consumed); `max_completion_tokens` is honoured
like `max_tokens`. `srv.request_headers` holds
each request's headers (lower-cased names), parallel to `srv.requests`.

With `api_key="sk-..."`, any request lacking `Authorization: Bearer sk-...` gets 401 (this check
consumes no fault). Access logs are silent; the server shuts down cleanly on context exit.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FAULTS", "FakeOpenAIServer"]

FAULTS = (
    "ok",
    "429",
    "500",
    "502",
    "503",
    "504",
    "timeout",
    "malformed",
    "badjson",
    "drop",
    "400ctx",
    "400",
    "401",
    "404",
    "cut",
)

_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"\s*\S+|\s+")  # words with their leading whitespace; trailing blanks last


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _first_words(text: str, n: int) -> str:
    """The first `n` whitespace words of `text`, keeping its original spacing."""
    if n <= 0:
        return ""
    for i, m in enumerate(_WORD.finditer(text)):
        if i == n - 1:
            return text[: m.end()]
    return text


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _default_reply(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return "echo: " + _content_text(m.get("content"))
    return "echo: "


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        # Clients that time out or hang up mid-reply are expected here; stay quiet.
        pass


class FakeOpenAIServer:
    """OpenAI-compatible loopback server; see the module docstring."""

    def __init__(
        self,
        reply: Callable[[list[dict]], str] | Sequence[str] | None = None,
        faults: Sequence[str] | None = None,
        *,
        model: str = "fake-model",
        api_key: str | None = None,
        retry_after: str | float = "0",
        timeout_sleep: float = 2.0,
        latency: float = 0.0,
        supports_logprobs: bool = True,
        honour_stop: bool = True,
        include_usage: bool = True,
        reject_max_tokens: bool = False,
        stream_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if reply is None:
            self._reply: Callable[[list[dict]], str] = _default_reply
        elif callable(reply):
            self._reply = reply
        else:
            texts = list(reply)
            if not texts:
                raise ValueError("reply list is empty; give at least one string")
            cycle = itertools.cycle(texts)
            cycle_lock = threading.Lock()

            def _next(_messages: list[dict]) -> str:
                with cycle_lock:
                    return next(cycle)

            self._reply = _next
        for f in faults or []:
            if f.split(":", 1)[0] not in FAULTS:
                raise ValueError(f"unknown fault {f!r}; choose from {', '.join(FAULTS)}")
        self._faults = list(faults or [])
        self.model = model
        self.api_key = api_key
        self.retry_after = str(retry_after)
        self.timeout_sleep = float(timeout_sleep)
        self.latency = float(latency)  # seconds added to every chat reply (a model's think time)
        self.supports_logprobs = supports_logprobs
        self.honour_stop = honour_stop
        self.include_usage = include_usage
        self.reject_max_tokens = reject_max_tokens
        self.stream_delay = float(stream_delay)
        self.requests: list[tuple[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.fault_log: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._host, self._port = host, port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server((self._host, self._port), self._make_handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="FakeOpenAIServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a "timeout" fault
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it as a context manager")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (no /v1)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT/v1 -- what an OpenAI client takes as base_url."""
        return self.url + "/v1"

    # -- state ---------------------------------------------------------------------------------
    def add_faults(self, *faults: str) -> None:
        """Queue more faults (consumed after any still pending)."""
        with self._lock:
            self._faults.extend(faults)

    def chat_requests(self) -> list[Any]:
        """Bodies of the chat-completion requests received so far."""
        with self._lock:
            return [b for p, b in self.requests if p.endswith("/chat/completions")]

    def _record(self, path: str, body: Any, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, body))
            self.request_headers.append(headers)

    def _next_fault(self) -> str:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else "ok"
            self.fault_log.append(fault)
            return fault

    # -- replies ---------------------------------------------------------------------------------
    def _chat_reply(self, body: dict) -> dict:
        messages = body.get("messages") or []
        text = str(self._reply(messages))
        finish = "stop"
        stop = (body.get("stop") or []) if self.honour_stop else []
        if isinstance(stop, str):
            stop = [stop]
        cuts = [i for s in stop if s and (i := text.find(s)) >= 0]
        if cuts:
            text = text[: min(cuts)]
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(max_tokens, int) and _words(text) > max_tokens:
            text, finish = _first_words(text, max_tokens), "length"
        prompt_tokens = sum(_words(_content_text(m.get("content"))) for m in messages)
        completion_tokens = _words(text)
        reply = {
            "id": f"chatcmpl-fake{len(self.fault_log)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if not self.include_usage:
            del reply["usage"]
        return reply

    def _completion_reply(self, body: dict) -> tuple[int, dict]:
        prompt = body.get("prompt", "")
        if isinstance(prompt, list):
            prompt = prompt[0] if prompt else ""
        prompt = str(prompt)
        echo = bool(body.get("echo"))
        wants_logprobs = body.get("logprobs") not in (None, False, 0) or echo
        if echo and wants_logprobs and not self.supports_logprobs:
            return 400, _error("echo is not supported together with logprobs", "invalid_request")
        max_tokens = body.get("max_tokens", 16)
        gen = ""
        if not isinstance(max_tokens, int) or max_tokens > 0:
            gen = self._reply([{"role": "user", "content": prompt}])
            if isinstance(max_tokens, int):
                gen = _first_words(gen, max_tokens)
        text = (prompt + gen) if echo else gen
        choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "length"}
        if body.get("logprobs") is not None or echo:
            tokens = _TOKEN.findall(text)
            offsets, pos = [], 0
            for t in tokens:
                offsets.append(pos)
                pos += len(t)
            lps = [round(-0.1 * len(t), 10) for t in tokens]
            choice["logprobs"] = {
                "tokens": tokens,
                "token_logprobs": lps,
                "top_logprobs": [{t: lp} for t, lp in zip(tokens, lps, strict=True)],
                "text_offset": offsets,
            }
        pt, ct = _words(prompt), _words(gen)
        return 200, {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
        }

    # -- the HTTP handler ------------------------------------------------------------------------
    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeOpenAI/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(
                self,
                status: int,
                payload: Any,
                headers: dict[str, str] | None = None,
                raw: bytes | None = None,
            ) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

            def _headers(self) -> dict[str, str]:
                return {k.lower(): v for k, v in self.headers.items()}

            def _authorized(self) -> bool:
                if srv.api_key is None:
                    return True
                if self.headers.get("Authorization", "") == f"Bearer {srv.api_key}":
                    return True
                self._send(401, _error("Incorrect API key provided.", "invalid_api_key"))
                return False

            def _read_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not raw:
                    return {}
                try:
                    return json.loads(raw)
                except ValueError:
                    return {"_raw": raw.decode("utf-8", "replace")}

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                srv._record(path, None, self._headers())
                if not self._authorized():
                    return
                if path.rstrip("/") == "/v1/models":
                    model = {"id": srv.model, "object": "model", "created": 0, "owned_by": "fake"}
                    self._send(200, {"object": "list", "data": [model]})
                else:
                    self._send(404, _error(f"no route GET {path}", "not_found"))

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0].rstrip("/")
                body = self._read_body()
                srv._record(path, body, self._headers())
                if not self._authorized():
                    return
                if not isinstance(body, dict) or "_raw" in body:
                    self._send(400, _error("request body is not a JSON object", "invalid_json"))
                elif path == "/v1/chat/completions":
                    self._chat(body)
                elif path == "/v1/completions":
                    status, payload = srv._completion_reply(body)
                    self._send(status, payload)
                else:
                    self._send(404, _error(f"no route POST {path}", "not_found"))

            def _stream(self, body: dict, cut: bool = False) -> None:
                """The reply as SSE chunks, one whitespace word each (see the docstring)."""
                reply = srv._chat_reply(body)
                text = reply["choices"][0]["message"]["content"]
                head = {k: reply[k] for k in ("id", "created", "model")}
                head["object"] = "chat.completion.chunk"

                def event(delta: dict, finish: str | None = None, **more: Any) -> bytes:
                    choice = {"index": 0, "delta": delta, "finish_reason": finish}
                    return b"data: " + json.dumps({**head, "choices": [choice], **more}).encode()

                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    out = [event({"role": "assistant", "content": ""})]
                    out += [event({"content": w}) for w in _TOKEN.findall(text)]
                    if cut:
                        out = out[:3]
                    else:
                        out.append(event({}, reply["choices"][0]["finish_reason"]))
                        opts = body.get("stream_options") or {}
                        if opts.get("include_usage") and "usage" in reply:
                            out.append(
                                b"data: "
                                + json.dumps(
                                    {**head, "choices": [], "usage": reply["usage"]}
                                ).encode()
                            )
                        out.append(b"data: [DONE]")
                    for i, chunk in enumerate(out):
                        if i and srv.stream_delay and srv._stopping.wait(srv.stream_delay):
                            return
                        self.wfile.write(chunk + b"\n\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass  # the client hung up mid-stream

            def _chat(self, body: dict) -> None:
                if srv.reject_max_tokens and "max_tokens" in body:
                    msg = (
                        "Unsupported parameter: 'max_tokens' is not supported with this model. "
                        "Use 'max_completion_tokens' instead."
                    )
                    self._send(400, _error(msg, "unsupported_parameter"))
                    return
                fault = srv._next_fault()
                kind, _, arg = fault.partition(":")
                if kind == "timeout":
                    if srv._stopping.wait(srv.timeout_sleep):
                        self.close_connection = True
                        return
                    kind = "ok"
                if kind == "cut":
                    self._stream(body, cut=True)
                elif kind == "ok":
                    if srv.latency and srv._stopping.wait(srv.latency):
                        self.close_connection = True
                        return
                    if body.get("stream"):
                        self._stream(body)
                    else:
                        self._send(200, srv._chat_reply(body))
                elif kind == "429":
                    ra = arg or srv.retry_after
                    err = _error("Rate limit reached; slow down.", "rate_limit_exceeded")
                    self._send(429, err, {"Retry-After": ra})
                elif kind in ("500", "502", "504"):
                    self._send(int(kind), _error(f"upstream error {kind}", "server_error"))
                elif kind == "503":
                    ra = arg or srv.retry_after
                    err = _error("the server is overloaded", "server_error")
                    self._send(503, err, {"Retry-After": ra})
                elif kind == "malformed":
                    self._send(200, {"nonsense": True})
                elif kind == "badjson":
                    self._send(200, None, raw=b"<html>this is not json")
                elif kind == "drop":
                    self.close_connection = True  # no status line, no headers: just hang up
                elif kind == "400ctx":
                    n = sum(
                        _words(_content_text(m.get("content"))) for m in body.get("messages") or []
                    )
                    msg = (
                        "This model's maximum context length is 8 tokens. However, you requested "
                        f"{n + int(body.get('max_tokens') or 0)} tokens. Please reduce the length "
                        "of the messages or completion."
                    )
                    self._send(400, _error(msg, "context_length_exceeded"))
                elif kind == "400":
                    self._send(400, _error("Invalid value for 'temperature'.", "invalid_value"))
                elif kind == "401":
                    self._send(401, _error("Incorrect API key provided.", "invalid_api_key"))
                elif kind == "404":
                    msg = f"The model `{body.get('model')}` does not exist."
                    self._send(404, _error(msg, "model_not_found"))

        return Handler


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
