"""One exception tree for everything syncdash raises on purpose.

The CLI maps these to exit codes (`exit_code`); anything else escaping is a bug and is shown with a traceback.
A run records `error_type` and `retryable` of the SourceError it failed on. The whole tree:

    SyncdashError                  root; exit 1
    ├── ConfigError                the config (or an argument standing in for it) is wrong: file, line, key; exit 2
    │   ├── ConfigErrors           several ConfigErrors found in one pass, reported together
    │   └── ScheduleError          a schedule, interval or time zone is invalid (also a ValueError, for validators)
    ├── UsageError                 the command line names something that does not exist; exit 2
    ├── StoreError                 the store database cannot be opened or has an unexpected shape
    ├── SourceError                the source as a whole cannot be read: the run fails
    │   ├── SourceUnavailable      a missing file or a server that is down: may work later (retryable)
    │   │   ├── FetchError         a request failed for good after its retries: URL, status, error_type
    │   │   └── CircuitOpen        a host's circuit breaker is open: fail fast
    │   ├── SchemaMismatch         the data lacks columns the config maps
    │   └── CheckpointInvalid      the checkpoint no longer matches the input: restart from the beginning
    ├── TargetError                the target table cannot hold what the config describes
    ├── DeleteGuardTripped         a full sync would delete more of the table than allowed
    ├── AlreadyRunning             another process holds the source's lease; exit 4
    ├── RunCancelled               stopped on request (Ctrl-C, SIGTERM, cancel); exit 130
    │   └── RunInterrupted         its daemon is stopping: resumes on the next start
    ├── HttpApiError               the daemon's HTTP API cannot start; exit 2
    └── ApiError                   an HTTP API request refused: its HTTP status and message

Two SourceErrors live beside their only users: BrowserNotFound (kinds.web.browser: no Chromium to drive) and
FlowStepFailed (engine.flow: a flow's step failed). The private retry signals (_Retry, _Transient, _Attempt)
never leave their modules; KeyedValueError (config.base) is a ValueError that pydantic turns into a ConfigError.
"""

from __future__ import annotations

from typing import Any


class SyncdashError(Exception):
    """Root of every error syncdash raises deliberately."""

    exit_code = 1


class ConfigError(SyncdashError):
    """A config file (or a command-line argument standing in for it) is wrong.

    Carries the file, line and key so the message can point the user at the exact spot.
    """

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, self.key) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class ConfigErrors(ConfigError):
    """Several config problems found in one pass, so the user can fix them all at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.reason, file=first.file, line=first.line, key=first.key)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class ScheduleError(ConfigError, ValueError):
    """A schedule, interval or time zone is not valid; the message says what is wrong and what is accepted.

    Also a ValueError, so pydantic validators that parse a schedule report it as a field error."""


class UsageError(SyncdashError):
    """The command line asked for something that does not exist (unknown source, run id...)."""

    exit_code = 2


class StoreError(SyncdashError):
    """The store database cannot be opened or has an unexpected shape."""


class SourceError(SyncdashError):
    """The source as a whole cannot be read: the run fails, nothing further is loaded."""

    error_type = "source"
    retryable = False


class SourceUnavailable(SourceError):
    """A missing or unreadable file, or a server that is down: may work later."""

    error_type = "unavailable"
    retryable = True


class SchemaMismatch(SourceError):
    """The data does not have the columns the config maps (e.g. a CSV header lacks one)."""

    error_type = "schema"


class CheckpointInvalid(SourceError):
    """The checkpoint no longer matches the input (the file changed): the engine restarts from the beginning."""

    error_type = "checkpoint"


class TargetError(SyncdashError):
    """The target table cannot hold what the config describes."""

    error_type = "database"


class DeleteGuardTripped(SyncdashError):
    """A full sync would delete more of the table than the source allows."""

    error_type = "delete_guard"


class AlreadyRunning(SyncdashError):
    """Another process holds the source's lease."""

    exit_code = 4


class RunCancelled(SyncdashError):
    """The run was stopped on request (Ctrl-C, SIGTERM, a cancel command)."""

    exit_code = 130


class RunInterrupted(RunCancelled):
    """Its daemon is shutting down: the run stops at a batch boundary and resumes on the next start."""


class FetchError(SourceUnavailable):
    """A request failed for good (after its retries). Says which URL (redacted), status and body start.

    error_type classifies it for the console and the retry policy: network, timeout, http, auth, parse.
    """

    error_type = "http"

    def __init__(self, message: str, *, error_type: str = "http", retryable: bool = True,
                 status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable
        self.status = status
        self.url = url


class CircuitOpen(SourceUnavailable):
    """A host's circuit breaker is open: the stream fails fast instead of hammering a sick server."""

    error_type = "breaker"


class HttpApiError(SyncdashError):
    """The daemon's HTTP API cannot start (port in use, missing package)."""

    exit_code = 2


class ApiError(SyncdashError):
    """A request the HTTP API refuses: its HTTP status and a message that says what is wrong (no internals);
    `extra` holds more fields for the JSON answer (e.g. the list of problems)."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
