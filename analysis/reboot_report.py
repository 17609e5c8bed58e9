"""The reboot report's headline figures, its summary in words and its plots.

The tables come from `analysis.reboot_analysis`, `analysis.boot_episodes` and
`analysis.stability`. This module turns them into what the ``reboot_causes`` notebook
shows. Plots are built without pyplot, so a notebook shows each figure once.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from analysis import codes
from analysis.stability import stability_headline

# Summary phrases for the causes of unexpected reboots.
CAUSE_PHRASES: dict[str, str] = {
    "fatal_camera": "camera failures (FATAL_CAMERA)",
    "fatal_config": "configuration failures (FATAL_CONFIG)",
    "panic": "panics",
    "watchdog": "watchdog resets",
    "software_restart_unlogged": "software restarts without EVT_REBOOT",
    "hardware_fault": "hardware faults (ESP_RST_EFUSE)",
    "unknown": "unknown reset reasons",
    "connectivity_watchdog": "connectivity-watchdog restarts (missed heartbeats)",
    "brownout": "brownouts",
}
CLASS_COLOURS: dict[str, str] = {
    "crash": "tab:red", "recovery": "tab:orange", "power": "tab:purple",
    "power_on": "tab:gray", "planned": "tab:green", "no_diagnostics": "tab:olive",
}
NAMED_DEVICES = 5


def reboot_headline(
    fleet: object,
    *,
    loops: pd.DataFrame,
    problems: pd.DataFrame,
    silent: pd.DataFrame,
) -> dict[str, object]:
    """Return the reboot report's headline figures, for ``summary.json`` and the summary.

    Parameters
    ----------
    fleet : Fleet
        From `analysis.load_fleet`.
    loops, problems, silent : DataFrame
        From `detect_boot_loops`, `detect_power_problems` and `silent_devices`.

    Returns
    -------
    dict
        The fleet-wide figures of `analysis.stability.fleet_stability`, plus ``reboots``
        (all reboots), ``devices_with_unexpected_reboots``, ``unexpected_by_cause`` (most
        first), ``top_cause`` and ``top_cause_share_pct``, ``boot_loops``,
        ``boot_loop_devices``, ``power_problem_devices`` and ``silent_devices`` (id lists),
        and ``unrecognised_reset_reasons``: heartbeats whose reset reason is outside the
        ESP-IDF table.
    """
    boots = fleet.boots
    unexpected = boots[boots["is_unexpected"].astype(bool)]
    by_cause = unexpected["cause"].value_counts()
    figures = stability_headline(fleet)
    figures.update({
        "reboots": int(boots["is_reboot"].astype(bool).sum()),
        "devices_with_unexpected_reboots": int(unexpected["device_id"].nunique()),
        "unexpected_by_cause": {str(cause): int(n) for cause, n in by_cause.items()},
        "top_cause": str(by_cause.index[0]) if len(by_cause) else None,
        "top_cause_share_pct": (100.0 * float(by_cause.iloc[0]) / len(unexpected)
                                if len(by_cause) else None),
        "boot_loops": int(len(loops)),
        "boot_loop_devices": _ids(loops),
        "power_problem_devices": _ids(problems),
        "silent_devices": _ids(silent),
        "unrecognised_reset_reasons": fleet.quality.count("unknown_reset_reason"),
    })
    return figures


def describe_reboots(figures: dict, window: str) -> str:
    """Return the headline figures as a short Markdown summary.

    Parameters
    ----------
    figures : dict
        From `reboot_headline`.
    window : str
        The window in words, such as ``notebook.describe_window(start, end)`` returns.
    """
    if not figures["devices"]:
        return (f"**No heartbeats** in the window ({window}), so there are no reboot figures. "
                "Widen the window (`--since`, `--until`) or check the `--firmware` and "
                "`--device` filters.")
    paragraphs = [_describe_rate(figures, window)]
    if figures["unexpected_reboots"]:
        paragraphs.append(_describe_causes(figures))
    paragraphs.append(
        f"Crash-free hours: {_percent(figures['crash_free_hours_pct'])}. "
        f"Crash-free devices: {_percent(figures['crash_free_devices_pct'])}.")
    paragraphs.append(_describe_episodes(figures))
    if figures["unrecognised_reset_reasons"]:
        paragraphs.append(
            f"Unrecognised codes: {_count(figures['unrecognised_reset_reasons'], 'heartbeat')} "
            "reported a reset reason outside the ESP-IDF table. They show as UNKNOWN(n), "
            "cause unknown.")
    if figures["power_on_reboots"]:
        paragraphs.append(
            f"{_count(figures['power_on_reboots'], 'power-on reboot')} counted apart, because "
            "a power cut, an unplugged cable and a pressed reset button look alike.")
    return "\n\n".join(paragraphs)


def plot_reboot_causes(causes: pd.DataFrame) -> Figure | None:
    """Plot reboots per cause and reset reason as horizontal bars coloured by class.

    Returns None when `causes` (from `reboot_causes`) is empty.
    """
    if causes.empty:
        return None
    labels = causes["cause"] + " (" + causes["reset_reason_name"] + ")"
    colours = causes["cause_class"].map(CLASS_COLOURS).fillna("tab:blue")
    figure = Figure(figsize=(9, 1.2 + 0.35 * len(causes)), layout="constrained")
    axes = figure.add_subplot()
    axes.barh(range(len(causes)), causes["reboots"], color=colours.tolist())
    axes.set_yticks(range(len(causes)), labels.tolist())
    axes.invert_yaxis()
    axes.set_xlabel("reboots")
    axes.set_ylabel("cause (reset reason)")
    axes.set_title("Reboots by cause, coloured by class")
    _class_legend(axes, causes["cause_class"].unique())
    return figure


def plot_rates(table: pd.DataFrame, by: str) -> Figure | None:
    """Plot unexpected reboots per 1,000 device-hours with 95 % intervals, one point per group.

    Parameters
    ----------
    table : DataFrame
        From `analysis.stability.fleet_stability` with the same `by`.
    by : {"firmware_version", "week"}
        The grouping column, shown on the x axis in the table's order.
    """
    shown = table[table["device_hours"] > 0]
    if shown.empty:
        return None
    rate = shown["rate_per_1000h"]
    errors = [rate - shown["rate_low"], shown["rate_high"] - rate]
    figure = Figure(figsize=(9, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.errorbar(range(len(shown)), rate, yerr=errors, fmt="o", capsize=4)
    axes.set_xticks(range(len(shown)), shown[by].astype(str).tolist(), rotation=30)
    axes.set_xlabel("firmware version" if by == "firmware_version" else "ISO week (UTC)")
    axes.set_ylabel("unexpected reboots per 1,000 device-hours")
    axes.set_ylim(bottom=0)
    axes.set_title("Unexpected reboot rate with exact 95 % Poisson intervals")
    return figure


def plot_boot_timeline(boots: pd.DataFrame, devices: list[str]) -> Figure | None:
    """Plot the boots of `devices` over time: a line for each boot's span, a dot at its start.

    Dots are coloured by the class of the boot's cause. Returns None without devices.
    """
    shown = boots[boots["device_id"].isin(devices) & boots["boot_time"].notna()]
    if shown.empty:
        return None
    row = {device: n for n, device in enumerate(devices)}
    y = shown["device_id"].map(row)
    start = _naive_utc(shown["boot_time"])
    end = _naive_utc(shown["last_seen"].fillna(shown["boot_time"]))

    figure = Figure(figsize=(10, 1.2 + 0.45 * len(devices)), layout="constrained")
    axes = figure.add_subplot()
    axes.hlines(y, start, end, color="lightgray", linewidth=4)
    axes.scatter(start, y, c=shown["cause_class"].map(CLASS_COLOURS).fillna("tab:blue"),
                 s=30, zorder=3)
    axes.set_yticks(range(len(devices)), devices)
    axes.invert_yaxis()
    axes.set_xlabel("time (UTC)")
    axes.set_ylabel("device")
    axes.set_title("Boots of the devices with the most unexpected reboots")
    _class_legend(axes, shown["cause_class"].unique())
    return figure


def plot_survival(curves: pd.DataFrame) -> Figure | None:
    """Plot Kaplan–Meier curves of time to an unexpected reboot, one step line per version.

    `curves` comes from `analysis.survival.reboot_survival`, in version order.
    """
    if curves.empty:
        return None
    figure = Figure(figsize=(9, 4), layout="constrained")
    axes = figure.add_subplot()
    for version, curve in curves.groupby("firmware_version", sort=False):
        times = [0.0, *curve["time"].tolist()]
        survival = [1.0, *curve["survival"].tolist()]
        axes.step(times, [100.0 * s for s in survival], where="post", label=str(version))
    axes.set_xlabel("hours since boot")
    axes.set_ylabel("boots without an unexpected reboot (%)")
    axes.set_ylim(0, 102)
    axes.set_title("Time to an unexpected reboot (Kaplan–Meier)")
    axes.legend(title="firmware", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _describe_rate(figures: dict, window: str) -> str:
    hours = f"{figures['device_hours']:,.0f} device-hours"
    if not figures["unexpected_reboots"]:
        bound = figures["rate_high"]
        limit = "" if bound is None else (
            f" (95 % upper bound {bound:,.2f} per 1,000 device-hours)")
        return (f"**No unexpected reboot** on {_count(figures['devices'], 'device')} in "
                f"{hours}{limit}, {window}.")
    interval = ""
    if figures["rate_low"] is not None:
        interval = f" (95 % CI {figures['rate_low']:,.2f}–{figures['rate_high']:,.2f})"
    return (
        f"**{figures['devices_with_unexpected_reboots']} of "
        f"{_count(figures['devices'], 'device')}** had unexpected reboots: "
        f"**{figures['unexpected_reboots']:,}** in {hours}, "
        f"**{figures['rate_per_1000h']:,.2f} per 1,000 device-hours**{interval}, {window}."
    )


def _describe_causes(figures: dict) -> str:
    total = figures["unexpected_reboots"]
    top = list(figures["unexpected_by_cause"].items())[:3]
    parts = [(CAUSE_PHRASES.get(cause, cause), 100.0 * count / total) for cause, count in top]

    phrase, share = parts[0]
    sentence = f"{phrase[0].upper()}{phrase[1:]} caused {share:.0f} % of them"
    others = [f"{phrase} {share:.0f} %" for phrase, share in parts[1:]]
    if others:
        sentence += ", " + " and ".join(others)
    return sentence + "."


def _describe_episodes(figures: dict) -> str:
    loop_devices = figures["boot_loop_devices"]
    power_devices = figures["power_problem_devices"]
    silent = figures["silent_devices"]

    loops = _count(figures["boot_loops"], "boot loop")
    if loop_devices:
        loops += f" on {_count(len(loop_devices), 'device')} ({_named(loop_devices)})"
    power = ("Power problems (bursts of short POWERON or BROWNOUT boots) on "
             + _count(len(power_devices), "device"))
    if power_devices:
        power += f" ({_named(power_devices)})"
    sentences = [loops + ".", power + "."]
    if silent:
        sentences.append(f"{_count(len(silent), 'device')} sent nothing in the last hour of "
                         f"the window ({_named(silent)}).")
    return " ".join(sentences)


def _class_legend(axes, classes) -> None:
    from matplotlib.lines import Line2D

    ordered = [name for name in codes.CAUSE_CLASS_ORDER if name in set(classes)]
    handles = [Line2D([], [], marker="s", linestyle="", color=CLASS_COLOURS[name], label=name)
               for name in ordered]
    axes.legend(handles=handles, title="class", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _naive_utc(times: pd.Series):
    return pd.to_datetime(times, utc=True).dt.tz_localize(None).to_numpy()


def _ids(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return []
    return [str(device) for device in pd.unique(frame["device_id"])]


def _named(devices: list[str]) -> str:
    shown = ", ".join(devices[:NAMED_DEVICES])
    return shown + (", ..." if len(devices) > NAMED_DEVICES else "")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"
