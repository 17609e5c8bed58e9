"""Helpers for report notebooks: read the parameters, load the fleet, publish the summary.

Papermill injects parameters as Python literals, so the runner passes times as ISO-8601
strings and filters as lists. These helpers turn them back into typed values, and reject
what papermill makes of other types: it writes a tuple or a datetime as its text.

Examples
--------
The first cells of a report notebook::

    fleet = open_report_fleet(db, start, end, firmware, devices)
    write_summary({"devices": fleet.heartbeats["device_id"].nunique()}, summary_path)
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.errors import InvalidInputError
from analysis.runner.source import resolve_database
from analysis.runner.window import parse_window, to_iso

PSEUDONYMIZE_ENVIRONMENT_VARIABLE = "DOORCOUNTER_PSEUDONYMIZE"
PSEUDONYM_KEY_FILE_ENVIRONMENT_VARIABLE = "DOORCOUNTER_PSEUDONYM_KEY_FILE"

__all__ = [
    "describe_figure",
    "describe_window",
    "format_duration",
    "open_report_fleet",
    "parse_list",
    "parse_window",
    "round_numbers",
    "show_figure",
    "show_summary",
    "show_table",
    "to_json_value",
    "write_summary",
]

logger = logging.getLogger(__name__)

MAX_TABLE_ROWS = 500
FIGURE_DPI = 100


def parse_list(value: object, name: str = "value") -> list[str]:
    """Return a notebook's list parameter as a list of strings.

    Parameters
    ----------
    value : list, str or None
        A list of strings, one string (a list of one), or an empty value (no filter).
    name : str
        The parameter name, for the error message.

    Raises
    ------
    InvalidInputError
        If `value` is a tuple, the text papermill writes for one, or a list that contains
        a value other than a string.

    Examples
    --------
    >>> parse_list(["1.0.0", "1.1.0"], "firmware")
    ['1.0.0', '1.1.0']
    >>> parse_list("", "firmware")
    []
    """
    if value is None or value == "":
        return []
    if isinstance(value, tuple) or (
        isinstance(value, str) and value.startswith("(") and value.endswith(")")
    ):
        raise InvalidInputError(
            f"parameter {name}={value!r} is a tuple or the text papermill writes for one; "
            f"pass a list such as {name}=['a', 'b']"
        )
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidInputError(
            f"parameter {name}={value!r} is a {type(value).__name__}; pass a list of strings"
        )

    not_text = [item for item in value if not isinstance(item, str)]
    if not_text:
        raise InvalidInputError(
            f"invalid parameter {name}: {not_text!r} are not strings; quote them, for "
            f"example {name}=['1.1.0']"
        )
    return list(value)


def open_report_fleet(
    db: str,
    start: str = "",
    end: str = "",
    firmware: object = None,
    devices: object = None,
    *,
    table: str = "heartbeats",
):
    """Load the fleet a report describes, from the notebook's parameters.

    Parameters
    ----------
    db : str
        Database path or URL; empty selects ``DOORCOUNTER_DB``, else the sample fleet,
        as ``fleet-report run`` does.
    start, end : str
        ISO-8601 bounds of the window; empty leaves that side open.
    firmware, devices : list of str
        Filters; empty keeps every firmware version or device.
    table : str
        The heartbeat table.

    Returns
    -------
    analysis.fleet.Fleet
        Heartbeats, events, boots and the data-quality report of the window.
    """
    from analysis import load_fleet
    from analysis.runner.snapshot import read_snapshot, snapshot_key

    start_time, end_time = parse_window(start, end)
    firmware_list = parse_list(firmware, "firmware")
    device_list = parse_list(devices, "devices")
    database = resolve_database(db)
    key = snapshot_key(database, table, to_iso(start_time), to_iso(end_time), firmware_list,
                       device_list)
    fleet = read_snapshot(key)
    if fleet is None:
        fleet = load_fleet(database, start=start_time, end=end_time,
                           devices=device_list or None, firmware=firmware_list or None,
                           table=table)
    fleet = _pseudonymize_if_requested(fleet)
    _show_history_notice(fleet)
    return fleet


def _pseudonymize_if_requested(fleet):
    # The runner sets this for --pseudonymize. The key comes from the environment or a key
    # file named there, never from the notebook's parameters, so it is not in any output.
    if os.environ.get(PSEUDONYMIZE_ENVIRONMENT_VARIABLE, "") != "1":
        return fleet
    from analysis.pseudonymize import load_pseudonym_key, pseudonymize_fleet

    key_file = os.environ.get(PSEUDONYM_KEY_FILE_ENVIRONMENT_VARIABLE) or None
    return pseudonymize_fleet(fleet, load_pseudonym_key(key_file))


def _show_history_notice(fleet) -> None:
    # Every report opens with the fleet load, so the notice about lost history shows at
    # the top of each one.
    from analysis.history import history_notice

    notice = history_notice(fleet)
    if notice:
        show_summary(notice)


def describe_window(start: str = "", end: str = "") -> str:
    """Return the window in words, for a report's first lines.

    Examples
    --------
    >>> describe_window("2026-05-01", "")
    'heartbeats received from 2026-05-01 00:00 UTC on'
    """
    start_time, end_time = parse_window(start, end)
    if start_time is None and end_time is None:
        return "all heartbeats in the database"
    if end_time is None:
        return f"heartbeats received from {_minute(start_time)} on"
    if start_time is None:
        return f"heartbeats received before {_minute(end_time)}"
    return f"heartbeats received from {_minute(start_time)} to before {_minute(end_time)}"


def write_summary(figures: Mapping[str, object], summary_path: str | Path) -> Path | None:
    """Write a report's headline figures as JSON for the run's ``summary.json``.

    Parameters
    ----------
    figures : mapping of str to value
        Names and values; numpy and pandas scalars become JSON numbers, missing values
        (NaN, NA, NaT) become null, timestamps ISO-8601 text.
    summary_path : str or Path
        Where to write; empty (a notebook opened by hand) writes nothing.

    Returns
    -------
    Path or None
        The file written, or None when `summary_path` is empty.
    """
    document = to_json_value(dict(figures))
    if not str(summary_path):
        return None
    path = Path(summary_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False),
                    encoding="utf-8")
    return path


def round_numbers(frame: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """Round the numeric columns of `frame` for display, leaving times and text alone.

    ``DataFrame.round`` warns about datetime columns (pandas 3), and a warning printed in
    a cell ends up in the published report.
    """
    numeric = frame.select_dtypes("number").columns
    return frame.round({column: decimals for column in numeric})


def show_summary(text: str) -> None:
    """Display `text` as Markdown in the notebook, for a report's summary in words.

    HTML in `text` is shown as text, not interpreted, because summaries quote device ids
    and firmware versions from the database.
    """
    from IPython.display import Markdown, display

    display(Markdown(html.escape(text, quote=False)))


def show_table(frame: pd.DataFrame, *, empty: str, max_rows: int = MAX_TABLE_ROWS) -> None:
    """Display `frame` as an HTML table with every value escaped, or `empty` when it has no rows.

    Parameters
    ----------
    frame : DataFrame
        The table; its index is left out.
    empty : str
        The sentence shown instead of an empty table.
    max_rows : int
        At most this many rows are shown, with a line saying how many were left out.
    """
    from IPython.display import HTML, display

    if frame.empty:
        show_summary(empty)
        return
    head = frame.head(max_rows).copy()
    for column in head.columns:
        if pd.api.types.is_timedelta64_dtype(head[column]):
            head[column] = head[column].map(format_duration)
    display(HTML(head.to_html(index=False, escape=True, na_rep="", border=0)))
    if len(frame) > max_rows:
        show_summary(f"First {max_rows:,} of {len(frame):,} rows shown.")


def format_duration(value: pd.Timedelta) -> str:
    """Return a duration in the largest two units, such as ``2 h 25 min`` or ``3 d 4 h``.

    Examples
    --------
    >>> format_duration(pd.Timedelta(minutes=145))
    '2 h 25 min'
    """
    if pd.isna(value):
        return ""
    minutes = int(pd.Timedelta(value).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def show_figure(figure: Figure | None, *, empty: str, alt: str = "") -> None:
    """Display a matplotlib figure as a PNG image, or `empty` when `figure` is None.

    The PNG is rendered here rather than by the notebook's matplotlib backend, so the
    image reaches the HTML page whichever backend the kernel runs.

    Parameters
    ----------
    figure : Figure or None
        The figure to show.
    empty : str
        The sentence shown instead when there is nothing to plot.
    alt : str
        Alternative text of the image; by default built from the axes' titles and labels.
    """
    from IPython.display import Image, display

    if figure is None:
        show_summary(empty)
        return
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    description = alt or describe_figure(figure)
    display(Image(data=buffer.getvalue(), format="png"),
            metadata={"image/png": {"alt": description}})


def describe_figure(figure: Figure) -> str:
    """Return a short description of a figure from its axes, for alternative text.

    Examples
    --------
    >>> figure = Figure()
    >>> axes = figure.add_subplot()
    >>> _ = axes.set(ylabel="free heap (bytes)", xlabel="uptime (h)")
    >>> describe_figure(figure)
    'Plot of free heap (bytes) against uptime (h)'
    """
    parts = []
    for axes in figure.get_axes():
        title = axes.get_title()
        labels = [axes.get_ylabel(), axes.get_xlabel()]
        if title:
            parts.append(title)
        elif all(labels):
            parts.append(f"{labels[0]} against {labels[1]}")
    described = "; ".join(dict.fromkeys(p for p in [figure.get_suptitle(), *parts] if p))
    return f"Plot of {described}" if described else "Figure"


def to_json_value(value: object, key: str = "value") -> object:
    """Convert `value` into plain JSON types, with missing values as None.

    Raises
    ------
    InvalidInputError
        If `value` (or an item in it) has no JSON form; `key` names it in the message.

    Examples
    --------
    >>> to_json_value({"devices": np.int64(3), "rate": float("nan")})
    {'devices': 3, 'rate': None}
    """
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series, pd.Index)):
        return [to_json_value(item, key) for item in value]
    return _scalar_to_json(value, key)


def _scalar_to_json(value: object, key: str) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        return value
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
        return None if value is pd.NaT else value.isoformat()
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta)):
        return pd.Timedelta(value).isoformat()
    raise InvalidInputError(
        f"summary figure {key!r} is a {type(value).__name__} ({value!r}), which has no JSON "
        "form; convert it to a number, text, list or dict"
    )


def _minute(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M UTC")
