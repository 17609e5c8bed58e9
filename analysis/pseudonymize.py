"""Replace device ids with keyed pseudonyms, so that reports can be shared outside the team.

A pseudonym is ``anon-`` and the first 16 hex digits of HMAC-SHA256(key, device id). The
same key gives the same pseudonym in every run, so reports stay comparable, and without
the key the ids cannot be recovered by hashing candidate ids (which a plain hash of a
short id such as ``dc-0042`` would allow). The key comes from the environment variable
``DOORCOUNTER_PSEUDONYM_KEY`` or from a key file, and is never written into an output.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis.errors import InvalidInputError
from analysis.quality import DataQualityReport

if TYPE_CHECKING:
    from analysis.fleet import Fleet

logger = logging.getLogger(__name__)

KEY_ENVIRONMENT_VARIABLE = "DOORCOUNTER_PSEUDONYM_KEY"
PSEUDONYM_PREFIX = "anon-"
# 64 bits: two of 100,000 devices share a pseudonym with a chance below 1 in 10^9.
PSEUDONYM_HEX_DIGITS = 16
# A shorter key could be guessed, and with it every pseudonym reversed.
MIN_KEY_BYTES = 16
KEY_HINT = (
    'create one with: python -c "import secrets; print(secrets.token_hex(32))" '
    "and keep it out of the report directory"
)


def load_pseudonym_key(key_file: str | Path | None = None) -> bytes:
    """Read the pseudonym key from `key_file`, else from ``DOORCOUNTER_PSEUDONYM_KEY``.

    Parameters
    ----------
    key_file : str or Path, optional
        A file whose content (surrounding whitespace removed) is the key.

    Returns
    -------
    bytes
        The key.

    Raises
    ------
    InvalidInputError
        If the file cannot be read, neither source gives a key, or the key is shorter
        than `MIN_KEY_BYTES`.
    """
    if key_file is not None and str(key_file).strip():
        path = Path(key_file).expanduser()
        try:
            key = path.read_bytes().strip()
        except OSError as err:
            raise InvalidInputError(
                f"cannot read the pseudonym key file {path}: {err.strerror}; pass a readable "
                f"file with --pseudonym-key-file or set {KEY_ENVIRONMENT_VARIABLE}"
            ) from err
        source = f"key file {path}"
    else:
        key = os.environ.get(KEY_ENVIRONMENT_VARIABLE, "").strip().encode("utf-8")
        source = KEY_ENVIRONMENT_VARIABLE

    if not key:
        raise InvalidInputError(
            f"no pseudonym key: set {KEY_ENVIRONMENT_VARIABLE} or pass --pseudonym-key-file; "
            + KEY_HINT
        )
    if len(key) < MIN_KEY_BYTES:
        raise InvalidInputError(
            f"the pseudonym key from {source} has {len(key)} bytes, fewer than the "
            f"{MIN_KEY_BYTES} needed to keep pseudonyms from being reversed; " + KEY_HINT
        )
    return key


def pseudonym(device_id: str, key: bytes | str) -> str:
    """Return the pseudonym of one device id.

    Examples
    --------
    >>> pseudonym("dc-0001", b"0123456789abcdef0123456789abcdef")
    'anon-84a51d85540a4839'
    """
    digest = hmac.new(_as_bytes(key), str(device_id).encode("utf-8"), hashlib.sha256)
    return PSEUDONYM_PREFIX + digest.hexdigest()[:PSEUDONYM_HEX_DIGITS]


def pseudonym_map(device_ids: Iterable[object], key: bytes | str) -> dict[str, str]:
    """Return ``{device id: pseudonym}`` for the distinct, non-missing ids given."""
    distinct = {str(device) for device in device_ids if not _is_missing(device)}
    return {device: pseudonym(device, key) for device in sorted(distinct)}


def pseudonymize_fleet(fleet: Fleet, key: bytes | str) -> Fleet:
    """Return a copy of `fleet` in which every device id is its pseudonym.

    Parameters
    ----------
    fleet : Fleet
        From `load_fleet`.
    key : bytes or str
        From `load_pseudonym_key`.

    Returns
    -------
    Fleet
        The ``device_id`` column of every table is replaced, and so is each device id
        that the data-quality report quotes in its detail text. Heartbeat ids stay.
    """
    mapping = pseudonym_map(_device_ids(fleet), key)
    changes = {}
    for item in dataclasses.fields(fleet):
        value = getattr(fleet, item.name)
        if isinstance(value, pd.DataFrame) and "device_id" in value:
            changes[item.name] = pseudonymize_frame(value, mapping)
        elif isinstance(value, DataQualityReport):
            changes[item.name] = pseudonymize_report(value, mapping)
    logger.info("replaced %d device ids with pseudonyms", len(mapping))
    return dataclasses.replace(fleet, **changes)


def pseudonymize_frame(frame: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Return a copy of `frame` with its ``device_id`` column mapped through `mapping`."""
    result = frame.copy()
    device = result["device_id"]
    result["device_id"] = device.map(lambda value: value if _is_missing(value)
                                     else mapping[str(value)]).astype(object)
    return result


def pseudonymize_report(
    report: DataQualityReport, mapping: Mapping[str, str]
) -> DataQualityReport:
    """Return a copy of `report` whose detail texts quote pseudonyms instead of device ids."""
    pattern = _id_pattern(mapping)
    result = DataQualityReport()
    for check, entry in report.to_dict().items():
        detail = entry["detail"]
        if pattern is not None:
            detail = pattern.sub(lambda match: mapping[match.group(0)], detail)
        result.add(check, entry["examples"], count=entry["count"], detail=detail)
    return result


def _id_pattern(mapping: Mapping[str, str]) -> re.Pattern | None:
    if not mapping:
        return None
    # Longest first, so that "dev-10" is replaced whole and not as "dev-1" plus "0"; the
    # lookarounds keep an id such as "A" from matching inside an ordinary word.
    alternatives = "|".join(re.escape(device) for device in sorted(mapping, key=len,
                                                                   reverse=True))
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w.-])")


def _device_ids(fleet: Fleet) -> list[object]:
    ids: list[object] = []
    for item in dataclasses.fields(fleet):
        value = getattr(fleet, item.name)
        if isinstance(value, pd.DataFrame) and "device_id" in value:
            ids.extend(value["device_id"].unique().tolist())
    return ids


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _as_bytes(key: bytes | str) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8")
