"""The owner of an embedded chDB database: ClickHouse's HTTP interface, served from chDB.

chDB (ClickHouse inside a Python process) lets exactly one process open a database directory. This
process is that one: it opens the directory and answers the part of ClickHouse's HTTP interface that
clickhouse-connect speaks, on 127.0.0.1 only, so the web processes, every query worker and
`manage.py` reach the embedded database exactly as they reach a ClickHouse server
(docs/events-store.md, "Who owns the embedded database").

What a request may carry, as on a server:
- the statement in the `query` URL parameter, in the body, or both (then the body is an INSERT's data);
- settings as URL parameters, applied to that statement alone: each request runs on a connection of
  its own, opened with them (cheap: a connection to an open engine costs about a millisecond);
- bound parameters as `param_<name>`;
- `query_id`. chDB names its queries itself, so the id is kept as the query's `log_comment`, where
  `KILL QUERY ... WHERE Settings['log_comment'] = id` finds it, and echoed in X-ClickHouse-Query-Id;
- a request body compressed with lz4, zstd, gzip or deflate (Content-Encoding).
Answers are uncompressed; an error answers 500 with X-ClickHouse-Exception-Code and ClickHouse's
message, which clickhouse-connect turns into the same exception a server's would. Each request runs
on its own thread: chDB runs queries of several connections at once.

Run: `python -m insights.events_store.chdb_server --path DIR --port N` (no Django: `make run` and
the tests start it).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

# URL parameters of the HTTP interface itself, never settings of the query.
TRANSPORT = frozenset(
    {
        "query", "query_id", "database", "default_format", "wait_end_of_query", "client_protocol_version",
        "enable_http_compression", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "compress", "decompress", "session_id", "session_timeout", "session_check", "user", "password",
        "buffer_size",
    }
)  # fmt: skip
FORMAT_CLAUSE = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
INSERT = re.compile(r"^\s*INSERT\s+INTO\s", re.IGNORECASE)
INSERT_WITH_DATA = re.compile(r"\s*INSERT\s+INTO\s.*?\sFORMAT\s+\w+[ \t]*(\r?\n)?", re.IGNORECASE | re.DOTALL)
ERROR_CODE = re.compile(r"Code: (\d+)\.")
UNKNOWN_ERROR = "1002"  # ClickHouse's UNKNOWN_EXCEPTION


class Engine:
    """The open database: one chDB engine per process, a connection per request."""

    def __init__(self, path: Path) -> None:
        import chdb  # the one import of chDB: only this process opens the database

        path.mkdir(parents=True, exist_ok=True)
        self._chdb = chdb
        self.path = str(path.resolve())
        # Held for the life of the process: the engine stays open while connections come and go.
        self._anchor = chdb.connect(self.path)

    def connect(self, settings: dict[str, str]) -> Any:
        options = urlencode(settings)
        return self._chdb.connect(f"{self.path}?{options}" if options else self.path)

    def close(self) -> None:
        self._anchor.close()


class Handler(BaseHTTPRequestHandler):
    engine: Engine
    protocol_version = "HTTP/1.1"  # keep-alive: clickhouse-connect pools its connections

    def log_message(self, format: str, *args: object) -> None:  # one line per request is noise
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/ping", "/") and "query" not in dict(parse_qsl(url.query)):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self._serve(b"")

    def do_POST(self) -> None:
        body = self._body()
        try:
            body = _decompressed(body, self.headers.get("Content-Encoding"))
        except Exception as error:  # a body that does not decompress is the client's mistake
            self._error(f"Code: 432. DB::Exception: Cannot decompress the body: {error}", 400)
            return
        self._serve(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":  # inserts stream in chunks
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _serve(self, body: bytes) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        settings = {
            key: value
            for key, value in params.items()
            if key not in TRANSPORT and not key.startswith("param_")
        }
        settings["log_comment"] = query_id
        bound = {
            key.removeprefix("param_"): value for key, value in params.items() if key.startswith("param_")
        }
        sql, data = _statement(params.get("query"), body)
        headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": "UTC"}
        started = time.monotonic()
        try:
            connection = self.engine.connect(settings)
            try:
                if data and INSERT.match(sql):
                    written = _insert(connection, sql, data)
                    output = b""
                    headers["X-ClickHouse-Summary"] = json.dumps({"written_rows": str(written)})
                else:
                    output_format = params.get("default_format", "TabSeparated")
                    match = FORMAT_CLAUSE.search(sql)
                    if match:
                        sql, output_format = sql[: match.start()], match.group(1)
                    if data:  # the HTTP interface appends the body to the query from the URL
                        sql += data.decode("utf-8", "replace")
                    output = connection.query(sql, output_format, params=bound).bytes()
                    headers["X-ClickHouse-Format"] = output_format
            finally:
                connection.close()
        except Exception as error:
            self._error(str(error), 500, headers)
            return
        headers["X-ClickHouse-Summary"] = headers.get("X-ClickHouse-Summary") or json.dumps(
            {"elapsed_ns": str(int((time.monotonic() - started) * 1e9))}
        )
        self._reply(200, output, {"Content-Type": "application/octet-stream", **headers})

    def _error(self, message: str, status: int, headers: dict[str, str] | None = None) -> None:
        code = ERROR_CODE.search(message)
        self._reply(
            status,
            (message.strip() + "\n").encode(),
            {**(headers or {}), "Content-Type": "text/plain; charset=UTF-8",
             "X-ClickHouse-Exception-Code": code.group(1) if code else UNKNOWN_ERROR},
        )  # fmt: skip

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _statement(query: str | None, body: bytes) -> tuple[str, bytes]:
    """The statement and an INSERT's data. As on a server, the statement is the `query` parameter
    followed by the body; an INSERT's data starts after its FORMAT clause, wherever that is."""
    if query is not None and INSERT.match(query):
        return query, body
    text = (query or "") + body[: 64 * 1024].decode("utf-8", "replace") if body else query or ""
    insert = INSERT_WITH_DATA.match(text)
    if insert is None:
        return (query or "") + body.decode("utf-8", "replace"), b""
    head = text[: insert.end()]
    consumed = len(head.encode()) - len((query or "").encode())
    return head, body[consumed:]


def _insert(connection: Any, sql: str, data: bytes) -> int:
    """`INSERT INTO t (columns) FORMAT F` with its data, streamed into chDB."""
    match = FORMAT_CLAUSE.search(sql)
    if match is None:
        raise ValueError("Code: 62. DB::Exception: An INSERT with data must name its FORMAT. (SYNTAX_ERROR)")
    inserter = connection.send_insert(sql[: match.start()], match.group(1))
    try:
        inserter.append(data)
    except BaseException:
        inserter.cancel()
        raise
    return int(inserter.finish().rows_written)


def _decompressed(body: bytes, encoding: str | None) -> bytes:
    if not body or encoding in (None, "", "identity"):
        return body
    if encoding == "lz4":
        import lz4.frame  # installed with clickhouse-connect, which compresses with it

        parts, rest = [], body
        while rest:  # one frame per block, one after another
            decompressor = lz4.frame.LZ4FrameDecompressor()
            parts.append(decompressor.decompress(rest))
            rest = decompressor.unused_data
        return b"".join(parts)
    if encoding == "zstd":
        from backports import zstd  # likewise

        return bytes(zstd.decompress(body))
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def serve(path: Path, port: int, *, ready: threading.Event | None = None) -> None:
    """Open the database at `path` and answer on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    engine = Engine(path)
    handler = type("BoundHandler", (Handler,), {"engine": engine})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"chDB {path} served on http://127.0.0.1:{server.server_address[1]}", flush=True)
    if ready is not None:
        ready.set()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", type=Path, required=True, help="the chDB database directory")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    options = parser.parse_args(argv)
    serve(options.path, options.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
