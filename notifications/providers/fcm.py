"""Firebase Cloud Messaging, HTTP v1 API: ``POST …/v1/projects/<project>/messages:send``.

The bearer token comes from the service account (``FCM_CREDENTIALS_FILE``) through
``google-auth``: it signs a JWT assertion with the account's private key and trades it at the
account's ``token_uri`` for an access token, cached in the process until it nears expiry. That
exchange is google-auth's own HTTP call to a configured (trusted) URL; the send itself goes
through ``broxiva.http`` like every other outbound call (trusted too: FCM's URL is ours).

Error answers are ``{"error": {"code", "message", "status", "details": [{"@type":
"type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}``.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
from django.conf import settings
from google.oauth2 import service_account

from broxiva import http
from broxiva.ratelimit import retry_after_seconds
from notifications.errors import PushNotConfigured, PushSendError

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_URL = "https://fcm.googleapis.com/v1/projects/{project}/messages:send"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# The token no longer reaches an app instance (uninstalled, expired) or belongs to another project.
GONE = ("UNREGISTERED", "SENDER_ID_MISMATCH")
TRANSIENT = ("UNAVAILABLE", "INTERNAL")

_lock = threading.Lock()
_cached: dict[str, tuple[float, service_account.Credentials]] = {}


def _credentials() -> service_account.Credentials:
    path = settings.FCM_CREDENTIALS_FILE
    if not path:
        raise PushNotConfigured("FCM", "FCM_CREDENTIALS_FILE")
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise PushSendError(f"FCM_CREDENTIALS_FILE cannot be read: {exc.strerror}", transient=False) from None
    with _lock:
        cached = _cached.get(path)
        if cached is None or cached[0] != mtime:  # a rotated key file is picked up without a restart
            try:
                creds = service_account.Credentials.from_service_account_file(path, scopes=[SCOPE])
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                raise PushSendError(f"FCM_CREDENTIALS_FILE is not a service-account key: {exc.__class__.__name__}",
                                    transient=False) from None
            cached = _cached[path] = (mtime, creds)
        return cached[1]


def forget_token() -> None:
    """Drop cached credentials (after a 401, and in tests): the next send fetches a new token."""
    with _lock:
        _cached.clear()


def access_token() -> str:
    creds = _credentials()
    with _lock:
        if not creds.valid:
            try:
                creds.refresh(google.auth.transport.requests.Request())
            except google.auth.exceptions.RefreshError as exc:
                raise PushSendError(f"FCM OAuth token refused: {_oauth_reason(exc)}",
                                    transient=bool(exc.retryable)) from None
            except google.auth.exceptions.TransportError as exc:
                raise PushSendError(f"FCM OAuth token server unreachable: {exc.__class__.__name__}",
                                    transient=True) from None
        return creds.token


def _oauth_reason(exc: Exception) -> str:
    # RefreshError's args are (message, response body); the body is the server's JSON error.
    return str(exc.args[0]) if exc.args else exc.__class__.__name__


def url() -> str:
    if settings.FCM_URL:
        return settings.FCM_URL
    project = settings.FCM_PROJECT_ID or getattr(_credentials(), "project_id", None)
    if not project:
        raise PushNotConfigured("FCM", "FCM_PROJECT_ID")
    return DEFAULT_URL.format(project=project)


def message(*, token: str, title: str, body: str, data: dict[str, Any] | None) -> dict[str, Any]:
    """Return the v1 request body. ``data`` values must be strings on the wire: others as JSON."""
    result: dict[str, Any] = {"token": token, "notification": {"title": title, "body": body}}
    if data:
        result["data"] = {str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                          for k, v in data.items()}
    return {"message": result}


def send(*, token: str, title: str, body: str, data: dict[str, Any] | None = None) -> str:
    """Send one message; return FCM's message name. Raise ``PushSendError`` sorted for retry."""
    target = url()
    bearer = access_token()
    try:
        response = http.post(target, json=message(token=token, title=title, body=body, data=data),
                             headers={"Authorization": f"Bearer {bearer}"}, timeout=settings.FCM_TIMEOUT,
                             max_bytes=256 * 1024)
    except http.HttpError as exc:
        raise PushSendError(f"FCM unreachable: {exc}", transient=exc.transient) from None
    if response.ok:
        try:
            return str(response.json().get("name", ""))
        except (ValueError, AttributeError):
            return ""
    raise _error(response)


def _error(response: http.Response) -> PushSendError:
    status, code, text = "", "", ""
    try:
        error = response.json().get("error") or {}
        status, text = str(error.get("status", "")), str(error.get("message", ""))
        for detail in error.get("details") or []:
            if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
                code = str(detail.get("errorCode", ""))
    except (ValueError, AttributeError):
        text = " ".join(response.text.split())[:200]
    name = code or status or f"HTTP {response.status}"
    reason = f"FCM {name} (HTTP {response.status}){': ' + text if text else ''}"
    if code in GONE or (not code and response.status == 404):
        return PushSendError(f"token gone: {reason}", transient=False, device_gone=True)
    if code == "QUOTA_EXCEEDED" or response.status == 429:
        return PushSendError(reason, transient=True,
                             retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    if response.status == 401:
        forget_token()  # an expired or revoked token: the retry fetches a new one
        return PushSendError(reason, transient=True)
    if code in TRANSIENT or status in TRANSIENT or response.status >= 500:
        return PushSendError(reason, transient=True)
    return PushSendError(reason, transient=False)
