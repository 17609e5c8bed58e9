"""Parse the time window of a report run: ISO-8601 times and relative spans such as ``7d``.

Every time is a UTC `pandas.Timestamp`; a time without an offset is taken as UTC, as the
server stores it. The window includes its start and excludes its end, like the loader.
"""

from __future__ import annotations

import re

import pandas as pd

from analysis.errors import InvalidInputError

RELATIVE_SPAN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: object, name: str = "time") -> pd.Timestamp | None:
    """Return `value` as a UTC timestamp, or None when it is None or an empty string.

    Parameters
    ----------
    value : str, datetime, Timestamp or None
        An ISO-8601 date or time such as ``2026-05-01`` or ``2026-05-01T10:00:00+02:00``.
    name : str
        The parameter name, for the error message.

    Raises
    ------
    InvalidInputError
        If `value` is not a date or time.

    Examples
    --------
    >>> parse_time("2026-05-01T12:00:00+02:00")
    Timestamp('2026-05-01 10:00:00+0000', tz='UTC')
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"invalid {name} {value!r}: expected an ISO-8601 date or time such as 2026-05-01 "
            "or 2026-05-01T10:00:00Z"
        ) from err
    if pd.isna(stamp):
        raise InvalidInputError(f"invalid {name} {value!r}: expected a date or time, not NaT")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def parse_window(
    start: object = "", end: object = ""
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Return the window (`start`, `end`) as UTC timestamps; an empty bound stays open.

    Raises
    ------
    InvalidInputError
        If a bound is not a date or time, or `start` is not before `end`.

    Examples
    --------
    >>> parse_window("2026-05-01", "")
    (Timestamp('2026-05-01 00:00:00+0000', tz='UTC'), None)
    """
    start_time = parse_time(start, "start")
    end_time = parse_time(end, "end")
    if start_time is not None and end_time is not None and start_time >= end_time:
        raise InvalidInputError(
            f"empty time window: start {start_time.isoformat()} is not before end "
            f"{end_time.isoformat()}; swap them or widen the window"
        )
    return start_time, end_time


def parse_since(value: str, *, now: pd.Timestamp | None = None) -> pd.Timestamp | None:
    """Return the start of a window given as a span before `now` (``7d``) or as a time.

    Parameters
    ----------
    value : str
        ``<n>m``, ``<n>h``, ``<n>d`` or ``<n>w`` (minutes, hours, days, weeks before
        `now`), or an ISO-8601 date or time.
    now : Timestamp, optional
        The end of the span; defaults to the current time.

    Examples
    --------
    >>> parse_since("7d", now=pd.Timestamp("2026-05-08", tz="UTC"))
    Timestamp('2026-05-01 00:00:00+0000', tz='UTC')
    """
    match = RELATIVE_SPAN.match(value or "")
    if match is None:
        try:
            return parse_time(value, "since")
        except InvalidInputError as err:
            raise InvalidInputError(
                f"invalid since {value!r}: expected a span such as 7d, 12h, 30m or 2w, or an "
                "ISO-8601 date or time such as 2026-05-01 or 2026-05-01T10:00:00Z"
            ) from err

    amount, unit = int(match.group(1)), match.group(2).lower()
    reference = now if now is not None else pd.Timestamp.now(tz="UTC")
    return reference - pd.Timedelta(**{SPAN_UNITS[unit]: amount})


def to_iso(stamp: pd.Timestamp | None) -> str:
    """Return `stamp` as ISO-8601 text, or ``""`` for an open bound (a notebook parameter)."""
    return "" if stamp is None else stamp.isoformat()
