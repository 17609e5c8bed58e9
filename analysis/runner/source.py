"""The source database of a report run: which one, whether it is usable, and its fingerprint.

The runner checks the database once, before any notebook starts, so a wrong path costs a
one-line error instead of a set of failed reports. The fingerprint in ``run.json`` lets a
reader tell later whether two runs read the same file. It is computed from the file's
bytes, read in binary mode without opening the file as a database.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pandas as pd

from analysis.database import database_label, discover_schema, open_database, sqlite_path

logger = logging.getLogger(__name__)

DATABASE_ENVIRONMENT_VARIABLE = "DOORCOUNTER_DB"
FINGERPRINT_BLOCK_BYTES = 1024 * 1024


def resolve_database(db: str | Path | None = None) -> str:
    """Return the heartbeat database to read: `db`, else ``DOORCOUNTER_DB``, else the sample.

    Parameters
    ----------
    db : str or Path, optional
        A SQLite file path or ``sqlite:///`` URL. Empty or None selects the default.

    Returns
    -------
    str
        A URL unchanged, or a file path made absolute so that notebooks running in
        another working directory open the same file. The sample fleet is generated
        under ``data/`` on first use.
    """
    chosen = str(db).strip() if db is not None else ""
    if not chosen:
        chosen = os.environ.get(DATABASE_ENVIRONMENT_VARIABLE, "").strip()
    if not chosen:
        from analysis.sample import ensure_sample_database

        chosen = str(ensure_sample_database())
        logger.info("no database given: using the sample fleet %s", chosen)

    if "://" in chosen:
        return chosen
    return str(Path(chosen).expanduser().resolve())


def check_database(db: str, *, table: str = "heartbeats") -> None:
    """Check that `db` is a readable SQLite database with a heartbeat table.

    Raises
    ------
    DatabaseNotFoundError, NotSQLiteError, UnsupportedDatabaseError
        If the file is missing, is not SQLite, or the URL names another engine.
    TableNotFoundError, MissingColumnError
        If the heartbeat table or its device id and time columns are missing.
    """
    engine = open_database(db)
    try:
        discover_schema(engine, table, database=database_label(db))
    finally:
        engine.dispose()


def fingerprint_database(db: str) -> dict[str, object]:
    """Describe the database file so that a later reader can tell whether it changed.

    Parameters
    ----------
    db : str
        A SQLite file path or ``sqlite:///`` URL, already checked by `check_database`.

    Returns
    -------
    dict
        ``path``, ``size_bytes``, ``modified_at`` (ISO-8601 UTC), ``sha256_head_tail`` (of
        the first and the last MiB) and ``wal_size_bytes`` (0 without a ``-wal`` file).
    """
    path = sqlite_path(db).resolve()
    status = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(FINGERPRINT_BLOCK_BYTES))
        if status.st_size > FINGERPRINT_BLOCK_BYTES:
            handle.seek(max(FINGERPRINT_BLOCK_BYTES, status.st_size - FINGERPRINT_BLOCK_BYTES))
            digest.update(handle.read())

    # Rows committed in WAL mode may still sit in the -wal file; its size shows that.
    wal = path.with_name(path.name + "-wal")
    return {
        "path": str(path),
        "label": database_label(db),
        "size_bytes": status.st_size,
        "modified_at": pd.Timestamp(status.st_mtime, unit="s", tz="UTC").isoformat(),
        "sha256_head_tail": digest.hexdigest(),
        "wal_size_bytes": wal.stat().st_size if wal.is_file() else 0,
    }
