"""The products app's errors (one family; each says whether trying again may help)."""

from __future__ import annotations


class SyncError(Exception):
    """A sync could not run. ``transient``: the job's retry policy may get it through."""

    transient: bool = True

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class SyncFailed(SyncError):
    """The run was marked ``failed`` (or will be retried, when ``transient``), with this text."""


class SyncRefused(SyncError):
    """A sync was not started (inactive connection, bad mode): nothing was recorded."""

    transient = False


class SyncDeferred(SyncError):
    """Run again after ``seconds`` without spending an attempt (a lock held, the source throttling)."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message, transient=True)
        self.seconds = seconds
