"""Local stand-ins for model providers: an HTTP server on 127.0.0.1 answering scripted replies in
each provider's real wire format, so tests drive the real SDK clients without a network.

``FakeProvider`` answers requests in order from a list of :class:`Reply` (or asks a function of
the request). Builders below write the bytes the providers send: OpenAI chat-completions SSE
chunks (tool-call arguments split across chunks, ``data: [DONE]``), Anthropic Messages SSE
(``message_start`` ... ``message_stop``), and their error bodies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Request:
    """One request the fake provider received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Reply:
    """What to answer: a status, a body sent whole (``bytes``) or in chunks (a list), and
    ``cut=True`` to drop the connection before the body is complete. ``hold`` makes the server
    wait for the event before answering, or after ``pause_after`` chunks of the body (to catch a
    client mid-call or mid-stream)."""

    status: int = 200
    body: bytes | list[bytes] = b""
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict[str, str])
    cut: bool = False
    hold: threading.Event | None = None
    pause_after: int | None = None


Script = Iterable[Reply] | Callable[[Request], Reply]


class FakeProvider:
    """A scripted HTTP server on 127.0.0.1 (a free port); a context manager."""

    def __init__(self, script: Script) -> None:
        self._lock = threading.Lock()
        self._answer: Callable[[Request], Reply]
        if callable(script):
            self._answer = script
        else:
            replies = list(script)

            def in_order(_request: Request) -> Reply:
                if not replies:
                    return error_reply(500, {"error": {"message": "the fake has no more replies"}})
                return replies.pop(0)

            self._answer = in_order
        self.requests: list[Request] = []
        self.disconnects = 0
        """Answers the client hung up on before their end."""
        self.received = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` requests have arrived (AssertionError after ``timeout``)."""
        with self.received:
            if not self.received.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")

    def _record(self, request: Request) -> Reply:
        with self.received:
            self.requests.append(request)
            self.received.notify_all()
            return self._answer(request)


def _handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else {},
            )
            reply = fake._record(request)
            if reply.hold is not None and reply.pause_after is None:
                reply.hold.wait(timeout=60)
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                with fake.received:
                    fake.disconnects += 1
                    fake.received.notify_all()
                self.close_connection = True

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(reply.body, bytes) and not reply.cut:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [reply.body] if isinstance(reply.body, bytes) else reply.body
            for index, piece in enumerate(pieces):
                if index == reply.pause_after and reply.hold is not None:
                    reply.hold.wait(timeout=60)
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            if reply.cut:
                self.close_connection = True  # no terminating chunk: the body is incomplete
                return
            self.wfile.write(b"0\r\n\r\n")

    return Handler


def error_reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Reply:
    """A JSON error answer."""
    return Reply(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers or {},
    )


# --- OpenAI chat completions -------------------------------------------------------------------


def _openai_chunk(
    model: str, delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def openai_events(chunks: Sequence[dict[str, Any]], *, done: bool = True) -> list[bytes]:
    """Chunks as SSE ``data:`` lines, then ``data: [DONE]`` unless ``done`` is false."""
    events = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
    if done:
        events.append(b"data: [DONE]\n\n")
    return events


def openai_text_chunks(
    text: str, *, model: str = "fake-gpt", usage: tuple[int, int] = (12, 5)
) -> list[dict[str, Any]]:
    """The chunks of a streamed text answer: one per word, a finish, and a usage chunk."""
    words = text.split(" ")
    chunks = [_openai_chunk(model, {"role": "assistant", "content": ""})]
    chunks += [
        _openai_chunk(model, {"content": w if i == 0 else f" {w}"}) for i, w in enumerate(words)
    ]
    chunks.append(_openai_chunk(model, {}, "stop"))
    chunks.append(_openai_usage(model, usage))
    return chunks


def _openai_usage(model: str, usage: tuple[int, int]) -> dict[str, Any]:
    tokens = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return _openai_chunk(model, None, usage=tokens)


def openai_tool_chunks(
    calls: Sequence[tuple[str, str, dict[str, Any]]],
    *,
    model: str = "fake-gpt",
    usage: tuple[int, int] = (30, 18),
) -> list[dict[str, Any]]:
    """The chunks of an answer asking for ``calls`` (id, name, arguments): each call's first
    chunk has its id and name, its arguments JSON follows in pieces of 7 characters."""
    chunks = [_openai_chunk(model, {"role": "assistant", "content": None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function"}
        head["function"] = {"name": name, "arguments": ""}
        chunks.append(_openai_chunk(model, {"tool_calls": [head]}))
        text = json.dumps(arguments)
        for start in range(0, len(text), 7):
            piece = {"index": index, "function": {"arguments": text[start : start + 7]}}
            chunks.append(_openai_chunk(model, {"tool_calls": [piece]}))
    chunks.append(_openai_chunk(model, {}, "tool_calls"))
    chunks.append(_openai_usage(model, usage))
    return chunks


def openai_text(text: str, **kwargs: Any) -> Reply:
    """A streamed OpenAI text answer."""
    return Reply(body=openai_events(openai_text_chunks(text, **kwargs)))


def openai_tools(calls: Sequence[tuple[str, str, dict[str, Any]]], **kwargs: Any) -> Reply:
    """A streamed OpenAI answer asking for tool calls."""
    return Reply(body=openai_events(openai_tool_chunks(calls, **kwargs)))


def openai_error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    """An OpenAI error answer (``{"error": {"message", "type", "code"}}``)."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return error_reply(status, body)


# --- Anthropic messages ------------------------------------------------------------------------


def anthropic_events(events: Sequence[dict[str, Any]]) -> list[bytes]:
    """Events as SSE ``event:``/``data:`` pairs."""
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def _message_start(model: str, input_tokens: int) -> dict[str, Any]:
    message = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return {"type": "message_start", "message": message}


def anthropic_answer_events(
    text: str,
    calls: Sequence[tuple[str, str, dict[str, Any]]] = (),
    *,
    model: str = "claude-fake",
    usage: tuple[int, int] = (21, 9),
) -> list[dict[str, Any]]:
    """The events of a streamed answer: a text block (word by word), then a ``tool_use`` block per
    call whose input arrives as ``input_json_delta`` pieces, then the stop."""
    events: list[dict[str, Any]] = [_message_start(model, usage[0]), {"type": "ping"}]
    block = 0
    if text:
        start = {"type": "text", "text": ""}
        events.append({"type": "content_block_start", "index": 0, "content_block": start})
        for i, word in enumerate(text.split(" ")):
            delta = {"type": "text_delta", "text": word if i == 0 else f" {word}"}
            events.append({"type": "content_block_delta", "index": 0, "delta": delta})
        events.append({"type": "content_block_stop", "index": 0})
        block = 1
    for offset, (call_id, name, arguments) in enumerate(calls):
        index = block + offset
        start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        raw = json.dumps(arguments)
        for cut in range(0, len(raw), 5):
            delta = {"type": "input_json_delta", "partial_json": raw[cut : cut + 5]}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    stop = "tool_use" if calls else "end_turn"
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": usage[1]},
        }
    )
    events.append({"type": "message_stop"})
    return events


def anthropic_answer(text: str, calls: Sequence[tuple[str, str, dict[str, Any]]] = ()) -> Reply:
    """A streamed Anthropic answer."""
    return Reply(body=anthropic_events(anthropic_answer_events(text, calls)))


def anthropic_error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    """An Anthropic error answer (``{"type": "error", "error": {"type", "message"}}``)."""
    return error_reply(status, {"type": "error", "error": {"type": kind, "message": message}})
