"""Greenroom's exceptions, one flat tree. Each docstring is the message users see."""

from __future__ import annotations


class GreenroomError(Exception):
    """A Greenroom error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class CatalogueError(GreenroomError):
    """The job declaration is invalid."""


class UnknownTask(GreenroomError):
    """No job with this name is in the catalogue."""


class InvalidParams(GreenroomError):
    """The job's parameters are invalid."""

    def __init__(self, message: str | None = None, *, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class DuplicateJob(GreenroomError):
    """A job with this unique key is already queued or running."""

    def __init__(self, existing_id: object) -> None:
        super().__init__()
        self.existing_id = existing_id


class IllegalTransition(GreenroomError):
    """The job cannot move to that status from the one it is in."""


class TransientError(GreenroomError):
    """A temporary failure: the job is retried with backoff."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        # What the failing service asked for (e.g. HTTP Retry-After), in seconds: the retry waits at
        # least this long, but never beyond the job's max_backoff (execution.retry_delay_ms).
        self.retry_after_ms = None if retry_after is None else max(0, int(retry_after * 1000))


class PermanentError(GreenroomError):
    """A failure that retrying cannot fix: the job fails at once."""


class JobCancelled(BaseException):
    """The job was cancelled while it ran.

    A BaseException, like Dramatiq's interrupts, so that a job's own `except Exception` cannot
    swallow it.
    """


class HardTimeLimitExceeded(GreenroomError):
    """The job ran past its hard time limit and its worker process was replaced."""


class WorkerLost(GreenroomError):
    """The job's worker died too many times while running it (crash, kill or out of memory)."""
