"""The notifications app's errors: one base class, and ``transient`` on every one of them.

``transient=True``: the same send may succeed later (SMTP 4xx, a dropped connection before the
message was accepted, a push service's 5xx or timeout): the row goes back to ``queued`` and the
queue's policy retries the job. ``transient=False``: asking again changes nothing (SMTP 5xx, a
push service's 4xx, a channel that is not configured): the row is ``failed`` with the reason,
and ``broxiva.worker`` fails the job at once without spending its retries.

Messages carry the server's own reply (``550 5.1.1 no such user``) and never a password, a
token, a VAPID key or an endpoint's query string.
"""

from __future__ import annotations


class NotificationError(Exception):
    """Base of every notifications error."""

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        if transient is not None:
            self.transient = transient
        self.message = message
        super().__init__(message)


# --- E-mail ------------------------------------------------------------------------------------


class EmailSendError(NotificationError):
    """The mail backend did not take the message.

    ``outcome_unknown``: the connection broke after the message body had started to go out, so
    the server may have accepted it; at most once means it is never sent again automatically.
    """

    def __init__(self, message: str, *, transient: bool, outcome_unknown: bool = False) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message, transient=transient and not outcome_unknown)


class EmailSendFailed(NotificationError):
    """Raised by the ``email`` job when a send failed: the row says why (``last_error``)."""

    def __init__(self, email_id: int, reason: str, *, transient: bool) -> None:
        self.email_id = email_id
        self.reason = reason
        super().__init__(f"e-mail {email_id} not sent: {reason}", transient=transient)


# --- Push --------------------------------------------------------------------------------------


class PushSendError(NotificationError):
    """A push service refused or did not answer a delivery.

    ``device_gone``: the subscription or token no longer exists (Web Push 404/410, FCM
    ``UNREGISTERED``): the device is deactivated and nothing is retried. ``retry_after`` is set
    for a rate limit (HTTP 429, FCM ``QUOTA_EXCEEDED``): the job is deferred, not retried.
    """

    def __init__(self, message: str, *, transient: bool, device_gone: bool = False,
                 retry_after: float | None = None) -> None:
        self.device_gone = device_gone
        self.retry_after = retry_after
        super().__init__(message, transient=transient and not device_gone)


class PushNotConfigured(PushSendError):
    """The channel has no credentials (no VAPID key, no FCM service account): permanent."""

    def __init__(self, channel: str, missing: str) -> None:
        super().__init__(f"{channel} is not configured: set {missing}", transient=False)


class PushSendFailed(NotificationError):
    """Raised by the ``notification`` job when a delivery failed: the row says why."""

    def __init__(self, delivery_id: int, reason: str, *, transient: bool) -> None:
        self.delivery_id = delivery_id
        self.reason = reason
        super().__init__(f"push delivery {delivery_id} not sent: {reason}", transient=transient)
