"""A local HTTP stand-in for the OpenAI and Anthropic APIs, so the real client libraries run.

Tests queue replies with `reply(...)`; every request is recorded in `requests`. It serves
`POST /v1/chat/completions` (OpenAI-compatible) and `POST /v1/messages` (Anthropic).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str = '{"name": "Stub Name", "description": "A stub description."}'
    status: int = 200
    delay: float = 0.0


@dataclass
class LLMStub:
    server: ThreadingHTTPServer
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def reply(self, text: str | None = None, *, status: int = 200, delay: float = 0.0) -> None:
        self.replies.append(Reply(text if text is not None else Reply.text, status, delay))

    def reset(self) -> None:
        with self.lock:
            self.replies.clear()
            self.requests.clear()

    def next_reply(self) -> Reply:
        with self.lock:
            return self.replies.popleft() if self.replies else Reply()


def _handler(stub: LLMStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with stub.lock:
                stub.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
            reply = stub.next_reply()
            time.sleep(reply.delay)
            if reply.status != 200:
                payload: dict[str, Any] = {"error": {"type": "server_error", "message": "stub failure"}}
            elif self.path.endswith("/chat/completions"):
                payload = {
                    "id": "chatcmpl-stub",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "stub"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            elif self.path.endswith("/messages"):
                payload = {
                    "id": "msg_stub",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "stub"),
                    "content": [{"type": "text", "text": reply.text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 1, "output_tokens": 1},
                }
            else:
                reply.status, payload = 404, {"error": {"message": f"no route {self.path}"}}
            data = json.dumps(payload).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def start_llm_stub() -> LLMStub:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    stub = LLMStub(server=server)
    server.RequestHandlerClass = _handler(stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="llm-stub", daemon=True).start()
    return stub
