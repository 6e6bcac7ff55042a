"""Local push services on loopback that check the real wire formats.

``WebPushService`` is a push service (RFC 8030): it DECRYPTS each message body with the
subscriber's private key (RFC 8291 ``aes128gcm``, via ``http_ece``) and VERIFIES the VAPID JWT
of the ``Authorization: vapid t=…, k=…`` header (RFC 8292: ES256 signature by ``k``, ``aud`` =
its own origin, ``exp`` within 24 h, a ``sub``). ``FcmService`` is both Google's OAuth token
endpoint (it checks the service account's RS256-signed JWT assertion with google-auth) and the
FCM HTTP v1 ``messages:send`` endpoint (it checks the bearer token it issued and the message's
shape). Both answer with scripted responses and record what they received.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from google.auth import jwt as google_jwt


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Reply:
    status: int = 201
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


class _Server:
    """A threaded HTTP server on 127.0.0.1 that hands each POST to ``handle(path, headers, body)``."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                reply = owner.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- Web Push -----------------------------------------------------------------------------------


@dataclass
class Subscriber:
    """A browser's push subscription: its private key stays here, the public parts go to the server."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64(self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                              serialization.PublicFormat.UncompressedPoint))

    @property
    def auth(self) -> str:
        return b64(self.auth_secret)


@dataclass
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def private_raw(self) -> str:
        """The raw URL-safe base64 form key generators print (WEBPUSH_VAPID_PRIVATE_KEY)."""
        return b64(self.private_key.private_numbers().private_value.to_bytes(32, "big"))

    @property
    def public_raw(self) -> str:
        return b64(self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                              serialization.PublicFormat.UncompressedPoint))


@dataclass
class PushMessage:
    path: str
    headers: dict[str, str]
    payload: bytes | None  # decrypted
    claims: dict[str, Any] | None  # of a verified VAPID JWT
    problems: list[str]

    def json(self) -> Any:
        return json.loads(self.payload or b"null")


class WebPushService(_Server):
    """A push service: ``/push/<name>`` is a subscription's endpoint; replies scripted per path."""

    def __init__(self, vapid: VapidKeys) -> None:
        self.vapid = vapid
        self.subscribers: dict[str, Subscriber] = {}
        self.replies: dict[str, list[Reply]] = {}
        self.messages: list[PushMessage] = []
        super().__init__()

    def subscribe(self, name: str) -> tuple[str, Subscriber]:
        subscriber = self.subscribers[name] = Subscriber()
        return f"{self.origin}/push/{name}", subscriber

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        name = path.rsplit("/", 1)[-1]
        problems: list[str] = []
        claims = self._verify_vapid(headers.get("authorization", ""), problems)
        payload = None
        if headers.get("content-encoding") != "aes128gcm":
            problems.append(f"Content-Encoding is {headers.get('content-encoding')!r}")
        if not headers.get("ttl", "").isdigit():
            problems.append("no TTL header")
        subscriber = self.subscribers.get(name)
        if subscriber is None:
            problems.append("unknown subscription")
        else:
            try:
                payload = http_ece.decrypt(body, private_key=subscriber.private_key,
                                           auth_secret=subscriber.auth_secret, version="aes128gcm")
            except Exception as exc:  # what a push service does with a body it cannot read: 400
                problems.append(f"cannot decrypt: {exc!r}")
        with self.lock:
            self.messages.append(PushMessage(path, headers, payload, claims, problems))
            queue = self.replies.get(name) or []
            reply = queue.pop(0) if queue else Reply(201, headers={"Location": f"{self.origin}/m/{len(self.messages)}"})
        if problems and reply.status < 300:
            return Reply(400, "; ".join(problems).encode())
        return reply

    def _verify_vapid(self, authorization: str, problems: list[str]) -> dict[str, Any] | None:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            problems.append(f"Authorization scheme is {scheme!r}, not vapid")
            return None
        parts = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        token, key = parts.get("t", ""), parts.get("k", "")
        if key != self.vapid.public_raw:
            problems.append("k is not the application server's public key")
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(unb64(header_b64))
            signature = unb64(signature_b64)
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
            public.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                               int.from_bytes(signature[32:], "big")),
                          f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(unb64(claims_b64))
        except Exception as exc:
            problems.append(f"VAPID JWT does not verify: {exc!r}")
            return None
        if header.get("alg") != "ES256":
            problems.append(f"JWT alg {header.get('alg')}")
        if claims.get("aud") != self.origin:
            problems.append(f"aud {claims.get('aud')!r} is not {self.origin}")
        if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
            problems.append("exp is not within the next 24 h")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            problems.append("no sub contact")
        return claims


# --- FCM ----------------------------------------------------------------------------------------

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def fcm_error(status: int, grpc_status: str, message: str, error_code: str | None = None, **headers: str) -> Reply:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}] \
        if error_code else []
    return json_reply(status, {"error": {"code": status, "message": message, "status": grpc_status,
                                         "details": details}}, **headers)


class FcmService(_Server):
    """Google's OAuth token endpoint (``/token``) and FCM v1 (``/v1/projects/<p>/messages:send``)."""

    PROJECT = "broxiva-test"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = f"fcm-sender@{self.PROJECT}.iam.gserviceaccount.com"
        self.issued: list[str] = []
        self.token_requests = 0
        self.replies: list[Reply] = []
        self.messages: list[dict[str, Any]] = []
        self.problems: list[str] = []
        super().__init__()

    @property
    def send_url(self) -> str:
        return f"{self.origin}/v1/projects/{self.PROJECT}/messages:send"

    def service_account(self) -> dict[str, str]:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": self.PROJECT, "private_key_id": "test-key-1",
                "private_key": pem, "client_email": self.client_email, "client_id": "1234567890",
                "token_uri": f"{self.origin}/token"}

    def write_credentials(self, directory) -> str:
        path = os.path.join(directory, "service-account.json")
        with open(path, "w") as fh:
            json.dump(self.service_account(), fh)
        return path

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if path == "/token":
            return self._token(body)
        if path == f"/v1/projects/{self.PROJECT}/messages:send":
            return self._send(headers, body)
        return Reply(404, b"not found")

    def _token(self, body: bytes) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        public_pem = self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        try:
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                raise ValueError(f"grant_type {form.get('grant_type')!r}")
            # Google's audience whatever token_uri says: google-auth signs for it, as Google expects.
            claims = google_jwt.decode(form["assertion"], certs=[public_pem], audience=GOOGLE_TOKEN_AUDIENCE)
            if claims.get("iss") != self.client_email or claims.get("scope") != SCOPE:
                raise ValueError(f"iss/scope {claims.get('iss')!r} {claims.get('scope')!r}")
        except Exception as exc:
            with self.lock:
                self.problems.append(f"token request: {exc!r}")
            return json_reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        with self.lock:
            self.token_requests += 1
            token = f"ya29.test-{self.token_requests}-{b64(os.urandom(12))}"
            self.issued.append(token)
        return json_reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _send(self, headers: dict[str, str], body: bytes) -> Reply:
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued:
            return fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        message = json.loads(body)
        with self.lock:
            self.messages.append(message)
            reply = self.replies.pop(0) if self.replies else None
        if reply is not None:
            return reply
        return json_reply(200, {"name": f"projects/{self.PROJECT}/messages/0:{len(self.messages)}"})
