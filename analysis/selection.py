"""Turn what an explorer types into filters: times, spans, names, and close matches for typos.

Used by the in-memory filters of `analysis.fleet.Fleet`. Every function raises an
`InvalidInputError` that names the bad value and what would be accepted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import pandas as pd

from analysis import codes
from analysis.errors import InvalidInputError
from analysis.runner.window import parse_time

MAX_CLOSE_MATCHES = 5
# difflib similarity below which an id is not offered as "did you mean".
CLOSE_MATCH_CUTOFF = 0.5
LEADING_ZEROS = re.compile(r"(?<!\d)0+(?=\d)")


class UnknownDeviceError(InvalidInputError):
    """A device id asked for is not in the fleet."""


class UnknownFirmwareError(InvalidInputError):
    """A firmware version asked for is not in the fleet."""


def close_matches(wanted: str, known: Iterable[str]) -> list[str]:
    """Return up to five ids from `known` that look like `wanted`, closest first.

    Ids equal to `wanted` but for case and leading zeros of numbers come first, then ids
    that contain `wanted` (or are contained in it) ignoring case, then ids that `difflib`
    finds similar.

    Examples
    --------
    >>> close_matches("dc-001", ["dc-0001", "dc-0002", "gw-17"])
    ['dc-0001', 'dc-0002']
    """
    known = list(known)
    folded = wanted.casefold()
    same_number = [item for item in known if _without_leading_zeros(item)
                   == _without_leading_zeros(wanted)]
    containing = [item for item in known
                  if folded and (folded in item.casefold() or item.casefold() in folded)]
    similar = difflib.get_close_matches(wanted, known, n=MAX_CLOSE_MATCHES,
                                        cutoff=CLOSE_MATCH_CUTOFF)
    return list(dict.fromkeys(same_number + containing + similar))[:MAX_CLOSE_MATCHES]


def _without_leading_zeros(device_id: str) -> str:
    # "dc-7" and "DC-0007" name the same device to a person typing an id.
    return LEADING_ZEROS.sub("", device_id.casefold())


def check_device(device_id: object, known: list[str]) -> None:
    """Raise `UnknownDeviceError` with close matches when `device_id` is not in `known`."""
    if device_id in known:
        return
    suggestions = close_matches(str(device_id), known)
    hint = (f"did you mean {', '.join(map(repr, suggestions))}?" if suggestions
            else f"it has {len(known)} devices, listed by fleet.device_ids")
    raise UnknownDeviceError(f"device {device_id!r} not found in this fleet; {hint}")


def flatten_names(values: Iterable[object]) -> list[str]:
    """Return strings and iterables of strings as one list of strings, first occurrence kept.

    Examples
    --------
    >>> flatten_names(["1.0.0", ["1.1.0", "1.0.0"]])
    ['1.0.0', '1.1.0']
    """
    flat: list[str] = []
    for value in values:
        items = [value] if isinstance(value, str) else list(value)
        flat.extend(str(item) for item in items)
    return list(dict.fromkeys(flat))


def as_utc(value: object, name: str = "time") -> pd.Timestamp | None:
    """Return `value` as a UTC timestamp (UTC when it has no zone); None or ``""`` is None.

    Raises
    ------
    InvalidInputError
        If `value` is not a date or time.
    """
    return parse_time(value, name)


def as_span(span: str | pd.Timedelta) -> pd.Timedelta:
    """Return `span` (``"7D"``, ``"24h"``, a Timedelta) as a positive Timedelta.

    Raises
    ------
    InvalidInputError
        If `span` is not a duration or not positive.
    """
    try:
        length = pd.Timedelta(span)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"invalid span {span!r}: expected a duration such as '7D', '24h' or '30min'"
        ) from err
    if pd.isna(length) or length <= pd.Timedelta(0):
        raise InvalidInputError(f"invalid span {span!r}: the duration must be positive")
    return length


def rows_in_window(
    frame: pd.DataFrame, column: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    """Return the rows of `frame` whose `column` lies in [`start`, `end`); None is open."""
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame[column] >= start
    if end is not None:
        keep &= frame[column] < end
    return frame[keep]


def latest(*stamps: pd.Timestamp | None) -> pd.Timestamp | None:
    """Return the latest of the stamps that are not None (None when all are)."""
    present = [stamp for stamp in stamps if stamp is not None]
    return max(present) if present else None


def earliest(*stamps: pd.Timestamp | None) -> pd.Timestamp | None:
    """Return the earliest of the stamps that are not None (None when all are)."""
    present = [stamp for stamp in stamps if stamp is not None]
    return min(present) if present else None


def match_disconnect_reason(down: pd.DataFrame, reason: int | str) -> pd.Series:
    """Return a mask of the EVT_WIFI_DOWN rows of `down` that match `reason`.

    Parameters
    ----------
    down : DataFrame
        Wi-Fi-down events, with ``d0``, ``reason_name`` and ``disconnect_family``.
    reason : int or str
        A code (``201`` or ``"201"``), a reason name with or without the ``WIFI_REASON_``
        prefix, ``"SILENT_DEATH"``, or a disconnect family such as ``"ap_not_found"``.

    Raises
    ------
    InvalidInputError
        If `reason` matches no code, name or family.
    """
    if isinstance(reason, int) and not isinstance(reason, bool):
        return down["d0"] == reason
    text = str(reason).strip()
    if text.isdigit():
        return down["d0"] == int(text)
    if text.lower() in codes.DISCONNECT_FAMILIES:
        return down["disconnect_family"] == text.lower()

    names = {text.upper(), f"WIFI_REASON_{text.upper()}"}
    known = set(codes.WIFI_REASONS.values()) | {codes.WIFI_SILENT_DEATH_NAME}
    if not names & known:
        raise InvalidInputError(
            f"unknown disconnect reason {reason!r}; pass a code such as 201, a name such as "
            f"NO_AP_FOUND or a family: {', '.join(codes.DISCONNECT_FAMILIES)}"
        )
    return down["reason_name"].isin(names)
