"""Parse what the trainee typed, per check kind. A malformed answer raises AnswerError and changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(%|[a-z/]+)?\s*$", re.IGNORECASE)
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:utc|z)?\s*$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9_/<][A-Za-z0-9_:./<>-]{0,127}$")
# The app accepts these request ids (app/labapi/request_id.py).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_YES = {"yes", "y", "true"}
_NO = {"no", "n", "false"}


class AnswerError(ValueError):
    """The answer cannot be read as the question expects; the message says what is expected."""


def number(text: str) -> float:
    match = _NUMBER.match(text)
    if not match:
        raise AnswerError(f"expected a number (e.g. 12.5, 120 ms, 3 %); got {text!r}")
    return float(match[1])


def utc_time(text: str, now: datetime) -> float:
    """HH:MM[:SS] in UTC, the latest such moment not after now (+1 minute): epoch seconds."""
    match = _TIME.match(text)
    if not match:
        raise AnswerError(f"expected a UTC time as HH:MM or HH:MM:SS (e.g. 12:34:56); got {text!r}")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise AnswerError(f"not a time of day: {text!r}")
    moment = now.astimezone(UTC).replace(hour=hour, minute=minute, second=second, microsecond=0)
    if moment > now + timedelta(minutes=1):
        moment -= timedelta(days=1)
    return moment.timestamp()


def yes_no(text: str) -> bool:
    word = text.strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise AnswerError(f"expected yes or no; got {text!r}")


def name(text: str) -> str:
    """An alert name, a label value, or 'none'."""
    value = text.strip()
    if not _NAME.match(value):
        raise AnswerError(
            f"expected one name (letters, digits, _ : . / - < >), e.g. /api/users or ApiNotReady; got {text!r}"
        )
    return value


def request_id(text: str) -> str:
    value = text.strip()
    if not _REQUEST_ID.match(value):
        raise AnswerError(
            f"expected a request id (the request_id field of a log line, e.g. 32 hex digits); got {text!r}"
        )
    return value
