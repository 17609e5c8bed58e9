"""Execute one report notebook with papermill and record how it ended.

A notebook that raises does not stop the run. Papermill still writes the executed
notebook with the failing cell marked, and the outcome records the exception for the run
index while the other reports go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError

from analysis.errors import InvalidInputError
from analysis.runner.kernel import kernel_config

logger = logging.getLogger(__name__)

# A cell that runs longer is stopped, so a hung cell cannot block a scheduled run for ever.
# The slowest whole report took 90 s on the 200-device sample fleet on a 2-core machine.
CELL_TIMEOUT_S = 3600
KERNEL_START_TIMEOUT_S = 120
PARAMETER_SCALARS = (str, int, float, bool, type(None))
# The executed notebook keeps the full traceback; run.json and the index need the gist.
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class ExecutionOutcome:
    """The end state of one notebook execution: success, duration and any error."""

    succeeded: bool
    duration_s: float
    error_name: str = ""
    error_message: str = ""


def check_parameters(parameters: Mapping[str, object]) -> None:
    """Reject parameter values that papermill would silently turn into strings.

    Papermill writes a tuple as the text ``"('a', 'b')"`` and a datetime as its ``str()``,
    so a notebook would receive a string where it expects a list or an ISO-8601 time.

    Raises
    ------
    InvalidInputError
        If a value is not a str, int, float, bool, None, or a list or dict of those.
    """
    for name, value in parameters.items():
        if isinstance(value, list):
            items = value
        elif isinstance(value, dict):
            items = list(value.values())
        else:
            items = [value]
        for item in items:
            if not isinstance(item, PARAMETER_SCALARS):
                raise InvalidInputError(
                    f"notebook parameter {name}={value!r}: {type(item).__name__} values cannot "
                    "be passed to a notebook; pass lists as list, times as ISO-8601 strings"
                )


def execute_notebook(
    source: Path,
    output: Path,
    parameters: Mapping[str, object],
    *,
    kernel_name: str,
) -> ExecutionOutcome:
    """Execute `source` into `output` with `parameters` on the kernel `kernel_name`.

    Parameters
    ----------
    source : Path
        The report notebook, committed without outputs.
    output : Path
        Where the executed notebook is written, also when a cell raises.
    parameters : mapping
        Values for the notebook's ``parameters`` cell; see `check_parameters`.
    kernel_name : str
        Kernel that overrides the one named in the notebook's metadata.

    Returns
    -------
    ExecutionOutcome
        Success, or the exception name and message of the cell that failed.
    """
    check_parameters(parameters)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel_name,
            # Every report kernel runs Python; this also serves notebooks saved without
            # kernelspec or language_info metadata, which papermill rejects otherwise.
            language="python",
            # The kernel starts in the notebook's directory. Papermill's own cwd= would
            # chdir the whole process, which breaks relative paths in the other threads
            # of a run with several jobs.
            resources={"metadata": {"path": str(source.parent)}},
            progress_bar=False,
            start_timeout=KERNEL_START_TIMEOUT_S,
            execution_timeout=CELL_TIMEOUT_S,
            config=kernel_config(),
        )
    except PapermillExecutionError as err:
        return ExecutionOutcome(False, _elapsed(started), err.ename, _message(err.evalue))
    except Exception as err:
        # Any other failure (the kernel died, a cell timed out, papermill rejected the
        # notebook) ends this report only: the contract is that the other reports still run.
        logger.warning("report notebook %s stopped: %s: %s", source.name,
                       type(err).__name__, err, exc_info=True)
        return ExecutionOutcome(False, _elapsed(started), type(err).__name__, _message(err))
    return ExecutionOutcome(True, _elapsed(started))


def _elapsed(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _message(value: object) -> str:
    text = str(value).strip()
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."
