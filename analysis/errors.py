"""Exceptions and warnings raised by the analysis package.

Every error the package raises on purpose derives from `AnalysisError`, so a caller can
catch one class. Each carries the object it concerns (database, table, column, report)
and a message that names the fix. Warnings flag data that was used but is suspect.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Base class of every error raised on purpose by `analysis`."""


class InvalidInputError(AnalysisError, ValueError):
    """An argument is invalid (a table name, a date, a version, a report name)."""


class DatabaseError(AnalysisError):
    """The heartbeat database cannot be read.

    Parameters
    ----------
    message : str
        What failed and what to do about it.
    database : str
        The path or URL that was opened.
    """

    def __init__(self, message: str, *, database: str) -> None:
        super().__init__(message)
        self.database = database


class DatabaseNotFoundError(DatabaseError):
    """The database file does not exist."""


class NotSQLiteError(DatabaseError):
    """The file exists but is not a SQLite database, or it is corrupt."""


class DatabaseLockedError(DatabaseError):
    """The database stayed locked by a writer after every retry."""


class UnsupportedDatabaseError(DatabaseError):
    """The URL names a database engine that the loader does not support."""


class SchemaError(AnalysisError):
    """The heartbeat table is missing or lacks a required column.

    Parameters
    ----------
    message : str
        What is missing and how to map it.
    table : str
        The table that was inspected.
    column : str or None
        The logical column that could not be found, if any.
    """

    def __init__(self, message: str, *, table: str, column: str | None = None) -> None:
        super().__init__(message)
        self.table = table
        self.column = column


class TableNotFoundError(SchemaError):
    """The heartbeat table does not exist in the database."""


class MissingColumnError(SchemaError):
    """A required column (device id, time, uptime) was not found."""


class ReportError(AnalysisError):
    """A report notebook could not be run.

    Parameters
    ----------
    message : str
        What failed.
    report : str
        The report name.
    """

    def __init__(self, message: str, *, report: str) -> None:
        super().__init__(message)
        self.report = report


class DataQualityWarning(UserWarning):
    """Data was loaded but some of it is suspect; the data-quality report has the detail."""


class HistoryOverwrittenWarning(DataQualityWarning):
    """The table shape lost diagnostic history (one row per device, or overwritten rows)."""
