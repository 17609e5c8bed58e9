"""Order firmware versions as versions, so that 1.10.0 sorts after 1.9.0.

Versions that PEP 440 accepts (``1.10.0``, ``v1.2.0``, ``1.3.0rc1``, ``1.3.0-beta``) are
compared by `packaging.version.Version`. A string with a version at its start and other text
after it (``1.2.0-dirty``) sorts just after that version. Anything else (``unknown``,
``dev-build``) sorts after every version, by natural order (``build9`` before ``build10``),
and missing values sort last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd
from packaging.version import InvalidVersion, Version

_RANK_VERSION = 0
_RANK_TEXT = 1
_RANK_MISSING = 2

_LEADING_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(.*)$", re.IGNORECASE)
_NATURAL_PART = re.compile(r"\d+|[^\d\W_]+")


def version_key(version: Any) -> tuple:
    """Return a sort key that orders firmware versions as versions.

    Parameters
    ----------
    version : object
        A version string, or a missing value (None, NaN, ``pd.NA``).

    Returns
    -------
    tuple
        A key that compares with the key of any other value: PEP 440 versions first in
        version order, then other strings in natural order, then missing values.

    Examples
    --------
    >>> sorted(["1.10.0", "unknown", "1.9.0", "1.2.0-dirty", "1.2.0"], key=version_key)
    ['1.2.0', '1.2.0-dirty', '1.9.0', '1.10.0', 'unknown']
    """
    if _is_missing(version):
        return (_RANK_MISSING, Version("0"), ())

    text = str(version).strip()
    try:
        return (_RANK_VERSION, Version(text), ())
    except InvalidVersion:
        pass

    # A build suffix that PEP 440 rejects ("1.2.0-dirty") should not move the version to
    # the end of the list, so order by the numeric prefix and then by the suffix.
    match = _LEADING_VERSION.match(text)
    if match:
        return (_RANK_VERSION, Version(match.group(1)), _natural_key(match.group(2)))
    return (_RANK_TEXT, Version("0"), _natural_key(text))


def sort_versions(versions: Iterable[Any], *, reverse: bool = False) -> list:
    """Sort firmware versions as versions, oldest first.

    Parameters
    ----------
    versions : iterable
        Version strings. Missing values are kept and sort last.
    reverse : bool, default False
        Sort newest first (missing values then come first).

    Returns
    -------
    list
        The same values in version order.

    Examples
    --------
    >>> sort_versions(["1.10.0", "1.1.0", "1.9.0"])
    ['1.1.0', '1.9.0', '1.10.0']
    """
    return sorted(versions, key=version_key, reverse=reverse)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        # pd.isna of a list-like is an array, and such a value is no missing scalar.
        return False


def _natural_key(text: str) -> tuple:
    # Numbers before words at the same position, so "rc2" < "rc10" and "1" < "a".
    parts = _NATURAL_PART.findall(text.lower())
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts)
