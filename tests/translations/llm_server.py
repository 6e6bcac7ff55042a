"""A local server on loopback speaking the Anthropic Messages / Message Batches API and the OpenAI
Chat Completions / Files / Batch API wire formats, for the real SDKs to talk to.

By default it "translates" each segment of the request's JSON contract by prefixing it with
``«<target>»`` (formatting tokens kept). ``script(kind, reply)`` queues a one-off reply for the
next call of that kind (``anthropic``, ``openai``): a callable taking the parsed request body
and returning ``(status, headers, json_body)``. Every request is recorded.
"""

from __future__ import annotations

import collections
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict], tuple[int, dict[str, str], Any]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def segments_of(body: dict, *, openai: bool = False) -> tuple[dict, list[str]]:
    message = body["messages"][-1]["content"]
    contract = json.loads(message)
    return contract, contract.get("segments", [])


def fake_translate(contract: dict, segments: list[str]) -> list[str]:
    return [f"«{contract['target_locale']}» {s}" for s in segments]


def anthropic_message(text: str, *, stop_reason: str = "end_turn", model: str = "claude-test") -> dict:
    return {
        "id": f"msg_{random.randrange(10**9)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 80},
    }


def openai_completion(text: str, *, finish_reason: str = "stop", model: str = "gpt-test") -> dict:
    return {
        "id": f"chatcmpl-{random.randrange(10**9)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 80, "total_tokens": 180},
    }


def anthropic_error(status: int, kind: str, message: str = "error", headers: dict | None = None) -> Reply:
    return lambda body: (status, headers or {}, {"type": "error", "error": {"type": kind, "message": message}})


def openai_error(status: int, code: str, message: str = "error", headers: dict | None = None) -> Reply:
    return lambda body: (status, headers or {}, {"error": {"message": message, "type": code, "code": code}})


def translated(
    kind: str,
    transform: Callable[[list[str]], list[str]] | None = None,
    *,
    text: str | None = None,
    cut_off: bool = False,
) -> Reply:
    """A 200 reply: the default translation passed through ``transform``, or a literal ``text``."""

    def reply(body: dict) -> tuple[int, dict, Any]:
        contract, segments = segments_of(body)
        out = fake_translate(contract, segments)
        answer = (
            text
            if text is not None
            else json.dumps({"translations": transform(out) if transform else out}, ensure_ascii=False)
        )
        if kind == "anthropic":
            return 200, {}, anthropic_message(answer, stop_reason="max_tokens" if cut_off else "end_turn")
        return 200, {}, openai_completion(answer, finish_reason="length" if cut_off else "stop")

    return reply


class LLMServer:
    def __init__(self, *, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: list[Seen] = []
        self.scripts: dict[str, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self.batches: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.batch_ready = True
        self.batch_fail: set[str] = set()  # custom_ids answered as errored
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, headers: dict[str, str], body: Any, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                raw = self._body()
                ctype = self.headers.get("Content-Type", "")
                body: Any = raw
                if ctype.startswith("application/json"):
                    body = json.loads(raw or b"{}")
                server.record("POST", self.path, dict(self.headers), body)
                if server.delay:
                    time.sleep(server.delay)
                self._send(*server.post(self.path, body, ctype, raw))

            def do_GET(self) -> None:  # noqa: N802
                server.record("GET", self.path, dict(self.headers), None)
                status, headers, body, content_type = server.get(self.path)
                self._send(status, headers, body, content_type)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # --- plumbing --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def record(self, method: str, path: str, headers: dict, body: Any) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, {k.lower(): v for k, v in headers.items()}, body))

    def script(self, kind: str, *replies: Reply) -> None:
        self.scripts[kind].extend(replies)

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    # --- the APIs --------------------------------------------------------------------------------

    def _reply(self, kind: str, body: dict) -> tuple[int, dict, Any]:
        with self.lock:
            scripted = self.scripts[kind].popleft() if self.scripts[kind] else None
        return (scripted or translated(kind))(body)

    def post(self, path: str, body: Any, ctype: str, raw: bytes) -> tuple[int, dict, Any]:
        if path == "/v1/messages":
            return self._reply("anthropic", body)
        if path == "/v1/chat/completions":
            return self._reply("openai", body)
        if path == "/v1/messages/batches":
            batch_id = f"msgbatch_{len(self.batches) + 1}"
            self.batches[batch_id] = {"kind": "anthropic", "requests": body["requests"]}
            return 200, {}, self._anthropic_batch(batch_id)
        if path == "/v1/files":
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
            parts = {
                p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                for p in message.iter_parts()
            }
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = parts["file"]
            return (
                200,
                {},
                {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(parts["file"]),
                    "created_at": 1,
                    "filename": "translations.jsonl",
                    "purpose": parts["purpose"].decode(),
                    "status": "processed",
                },
            )
        if path == "/v1/batches":
            batch_id = f"batch_{len(self.batches) + 1}"
            lines = [json.loads(line) for line in self.files[body["input_file_id"]].decode().splitlines() if line]
            self.batches[batch_id] = {"kind": "openai", "requests": lines, "input_file_id": body["input_file_id"]}
            return 200, {}, self._openai_batch(batch_id)
        return 404, {}, {"type": "error", "error": {"type": "not_found_error", "message": path}}

    def get(self, path: str) -> tuple[int, dict, Any, str]:
        parts = path.strip("/").split("/")
        if parts[:3] == ["v1", "messages", "batches"] and len(parts) == 4:
            return 200, {}, self._anthropic_batch(parts[3]), "application/json"
        if parts[:3] == ["v1", "messages", "batches"] and len(parts) == 5 and parts[4] == "results":
            return 200, {}, self._anthropic_results(parts[3]), "application/binary"
        if parts[:2] == ["v1", "batches"] and len(parts) == 3:
            return 200, {}, self._openai_batch(parts[2]), "application/json"
        if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
            return 200, {}, self.files[parts[2]], "application/octet-stream"
        return 404, {}, {"error": {"message": "not found"}}, "application/json"

    def _anthropic_batch(self, batch_id: str) -> dict:
        n = len(self.batches[batch_id]["requests"])
        ended = self.batch_ready
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else n,
                "succeeded": n if ended else 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T01:00:00Z" if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def _anthropic_results(self, batch_id: str) -> bytes:
        lines = []
        for item in self.batches[batch_id]["requests"]:
            custom_id = item["custom_id"]
            if custom_id in self.batch_fail:
                result = {
                    "type": "errored",
                    "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
                }
            else:
                status, _, message = self._reply("anthropic", item["params"])
                result = {"type": "succeeded", "message": message}
            lines.append(json.dumps({"custom_id": custom_id, "result": result}, ensure_ascii=False))
        lines.reverse()  # the API does not keep the order: neither do we (last request first)
        return ("\n".join(lines) + "\n").encode()

    def _openai_batch(self, batch_id: str) -> dict:
        batch = self.batches[batch_id]
        done = self.batch_ready
        out = err = None
        if done and "output_file_id" not in batch:
            ok_lines, err_lines = [], []
            for i, item in enumerate(batch["requests"]):
                if item["custom_id"] in self.batch_fail:
                    err_lines.append(
                        json.dumps(
                            {
                                "id": f"batch_req_{i}",
                                "custom_id": item["custom_id"],
                                "response": None,
                                "error": {"code": "server_error", "message": "busy"},
                            }
                        )
                    )
                    continue
                status, _, completion = self._reply("openai", item["body"])
                ok_lines.append(
                    json.dumps(
                        {
                            "id": f"batch_req_{i}",
                            "custom_id": item["custom_id"],
                            "response": {"status_code": status, "request_id": f"req_{i}", "body": completion},
                            "error": None,
                        },
                        ensure_ascii=False,
                    )
                )
            ok_lines.reverse()
            batch["output_file_id"] = f"file-out-{batch_id}"
            self.files[batch["output_file_id"]] = ("\n".join(ok_lines) + "\n").encode()
            if err_lines:
                batch["error_file_id"] = f"file-err-{batch_id}"
                self.files[batch["error_file_id"]] = ("\n".join(err_lines) + "\n").encode()
        if done:
            out, err = batch.get("output_file_id"), batch.get("error_file_id")
        n = len(batch["requests"])
        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": batch["input_file_id"],
            "completion_window": "24h",
            "status": "completed" if done else "in_progress",
            "output_file_id": out,
            "error_file_id": err,
            "created_at": 1,
            "request_counts": {"total": n, "completed": n if done else 0, "failed": 0},
        }
