"""Greenroom's log lines: the running job's fields on every line, secrets redacted, text or JSON.

`LOGGING` (project/settings.py) puts two filters on the console handler, so they see every line that
reaches it, from any logger (the job's code, Greenroom, Dramatiq, Django):

- `JobContextFilter` adds `job_id`, `task`, `queue` and `attempt` to a line written while a job runs
  in this thread: during the job function (workers.context's current job) and, around it, while
  Dramatiq processes the job's message (its claim, its failure and retry decision, Dramatiq's own
  "Failed to process message" line). Outside a job they are None.
- `RedactingFilter` rewrites the message, the traceback and extra fields so that secrets never
  reach the output: values of keys such as api_key, password, token, secret, authorization;
  `Bearer …` / `Token …` / `Basic …` credentials; passwords in URLs; well-known key shapes (sk-…).

`TextFormatter` shows the job fields as a suffix, `JsonFormatter` as fields. This module imports no
model: Django configures logging before its app registry is ready.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from dramatiq.common import q_name
from dramatiq.middleware import CurrentMessage

REDACTED = "[REDACTED]"
# = workers.execution.ATTEMPT_OPTION (not imported: it needs the app registry; a test checks they agree).
ATTEMPT_OPTION = "greenroom_attempt"
JOB_FIELDS = ("job_id", "task", "queue", "attempt")

# A key whose value is a secret: api_key, x-api-key, password, db_password, secret_key, token,
# access_token, authorization... ("tokens", "author" and a bare "key" are not: max_tokens=512 and
# unique_key=report:3 are worth reading).
_SENSITIVE_KEY = re.compile(
    r"[\w.-]*?"
    r"(?:api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret|passw(?:or)?d|passphrase|pwd|token"
    r"|authorization|auth|credentials?|cookie|session[_-]?id|signature)"
    r"(?:[_.-][\w.-]*)?",
    re.IGNORECASE,
)
# Any `key=` / `key:` / `'key': ` / `"key": ` (possessive and anchored at the key's start, so that a
# log line of any length is scanned in linear time); its value is matched only after a secret key.
_KEY_SEP = re.compile(r"""(?<![\w./-])(?P<key>[\w.-]++)(?P<sep>["']?\s*+[:=]\s*+)""")
_VALUE = re.compile(
    r"""(?P<quoted>"(?:[^"\\]|\\.)*+"|'(?:[^'\\]|\\.)*+')"""
    r"""|(?P<scheme>(?:Bearer|Token|Basic)\s++)?[^\s"',;&)}\]]++""",
    re.IGNORECASE,
)
# `Authorization: Bearer <token>` and friends, wherever they appear.
_CREDENTIAL = re.compile(r"\b(?P<scheme>(?i:bearer)|Token|Basic)\s+[A-Za-z0-9._~+/=-]{6,}")
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?P<head>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://[^/\s:@]*+):[^/\s@]++@")
# Keys recognisable by their shape: OpenAI-style sk-…, GitHub tokens, Slack tokens, AWS access key ids.
_KEY_SHAPES = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}"
                         r"|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16})\b")


def _redact_key_values(text: str) -> str:
    parts, done = [], 0
    for key in _KEY_SEP.finditer(text):
        if key.start() < done or not _SENSITIVE_KEY.fullmatch(key["key"]):
            continue
        value = _VALUE.match(text, key.end())
        if value is None:
            continue
        quote = value["quoted"][0] if value["quoted"] else ""
        parts += [text[done:key.end()], value["scheme"] or "", quote, REDACTED, quote]
        done = value.end()
    return "".join([*parts, text[done:]])


def redact(text: str) -> str:
    """`text` with every secret it visibly carries replaced by [REDACTED]."""
    text = _URL_PASSWORD.sub(rf"\g<head>:{REDACTED}@", text)
    text = _redact_key_values(text)
    text = _CREDENTIAL.sub(rf"\g<scheme> {REDACTED}", text)
    return _KEY_SHAPES.sub(REDACTED, text)


def is_secret_key(name: str) -> bool:
    """Whether a field called `name` holds a secret (its whole value is then redacted)."""
    return bool(_SENSITIVE_KEY.fullmatch(name))


def current_job_fields() -> dict[str, Any] | None:
    """job_id, task, queue and attempt of the job this thread is running, or None."""
    # sys.modules, not imports: a module not loaded yet means no job can be running, and importing
    # workers.context from here would need the app registry (logging is set up before it).
    context = sys.modules.get("workers.context")
    catalogue = sys.modules.get("workers.catalogue")
    ctx = None
    if context is not None:
        try:
            ctx = context.current_job()
        except RuntimeError:
            ctx = None
    if ctx is not None:
        queue = getattr(ctx.message, "queue_name", None)
        if queue is None and catalogue is not None:
            spec = catalogue.get(ctx.task)
            queue = spec.queue if spec is not None else None
        return {"job_id": str(ctx.job_id), "task": ctx.task, "queue": queue and q_name(queue),
                "attempt": ctx.attempt}
    # Before the claim and after the job function returned, the message being processed says which job.
    message = CurrentMessage.get_current_message()
    if message is None or catalogue is None or catalogue.get(message.actor_name) is None:
        return None
    return {"job_id": str(message.message_id), "task": message.actor_name, "queue": q_name(message.queue_name),
            "attempt": message.options.get(ATTEMPT_OPTION)}


class JobContextFilter(logging.Filter):
    """Adds the running job's job_id, task, queue and attempt to the record (None outside a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            fields = current_job_fields() or {}
        except Exception:  # noqa: BLE001 - a log line must never fail for want of its job fields
            fields = {}
        for name in JOB_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, fields.get(name))
        return True


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = {*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "message", "asctime", *JOB_FIELDS}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")}


class RedactingFilter(logging.Filter):
    """Redacts secrets from the message, its traceback and `extra` fields, once, before formatting."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg, record.args = redact(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = self._formatter.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
            for key, value in extra_fields(record).items():
                if is_secret_key(key):
                    setattr(record, key, REDACTED)
                elif isinstance(value, str):
                    setattr(record, key, redact(value))
        except Exception:  # noqa: BLE001 - a bad format string is the handler's to report, not ours
            return True
        return True


def job_suffix(record: logging.LogRecord) -> str:
    if getattr(record, "job_id", None) is None:
        return ""
    return " [" + " ".join(f"{name}={getattr(record, name, None)}" for name in JOB_FIELDS) + "]"


class TextFormatter(logging.Formatter):
    """The usual text line, with ` [job_id=… task=… queue=… attempt=…]` after the message in a job."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record) + job_suffix(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process, the job's fields, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if getattr(record, "job_id", None) is not None:
            payload.update({name: getattr(record, name, None) for name in JOB_FIELDS})
        for key, value in extra_fields(record).items():
            payload.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(payload, default=str)
