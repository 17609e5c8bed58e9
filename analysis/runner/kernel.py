"""The Jupyter kernel that executes report notebooks: the running interpreter's own.

A notebook's metadata names the kernel it was last saved with (``python3``, or a name from
someone else's machine such as ``python3-venv-old``). Executing under that name would run
the report in whatever environment the name points at, or fail where it is not installed.
The runner therefore installs its own kernelspec for the interpreter it runs in, named
after that interpreter's path, and passes that name to papermill, which overrides the
notebook's metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ipykernel.kernelspec import get_kernel_dict
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import KernelManager
from traitlets.config import Config

from analysis.errors import AnalysisError

logger = logging.getLogger(__name__)

KERNEL_NAME_PREFIX = "doorcounter-analysis"
KERNEL_START_TIMEOUT_S = 60


class KernelUnavailableError(AnalysisError):
    """No Jupyter kernel can be started for the interpreter that runs the reports."""


def ensure_kernel(executable: str | None = None) -> str:
    """Return the name of this package's kernelspec for `executable`, installing it if needed.

    The kernelspec is written when it is missing and rewritten when it differs from what
    the installed ipykernel would write, for example after an upgrade.

    Parameters
    ----------
    executable : str, optional
        Python interpreter that should execute the notebooks; defaults to ``sys.executable``.

    Returns
    -------
    str
        A kernel name to pass to papermill.

    Raises
    ------
    KernelUnavailableError
        If ipykernel is not installed for `executable`, or the kernel does not start.
    """
    python = os.path.abspath(executable or sys.executable)
    _check_ipykernel(python)

    manager = KernelSpecManager()
    name = kernel_name_for(python)
    expected = kernel_spec_for(python)
    if _installed_spec(manager, name) != expected:
        _install_kernelspec(manager, name, expected)
        logger.info("registered Jupyter kernel %s for %s", name, python)

    check_kernel_starts(name)
    return name


def kernel_spec_for(python: str) -> dict:
    """Return the ``kernel.json`` content that starts an IPython kernel with `python`.

    It is ipykernel's own kernelspec with the interpreter path replaced, so it declares
    the same protocol version and CurveZMQ support, which lets jupyter_client encrypt the
    kernel's TCP connections.
    """
    spec = get_kernel_dict(python_arguments=["-Xfrozen_modules=off"])
    spec["argv"] = [python, *spec["argv"][1:]]
    spec["display_name"] = f"Python (DoorCounter analysis, {Path(python).parent.parent})"
    return spec


def kernel_name_for(python: str) -> str:
    """Return the kernel name the runner registers for `python`.

    The name carries a hash of the interpreter path, so that two virtual environments on
    one machine do not overwrite each other's kernelspec in the user's Jupyter directory.
    """
    digest = hashlib.sha256(python.encode("utf-8")).hexdigest()[:10]
    return f"{KERNEL_NAME_PREFIX}-{digest}"


def kernel_config() -> Config:
    """Return the kernel manager settings for every kernel the runner starts.

    The kernels listen on TCP ports of localhost. With ``transport_encryption="auto"``,
    jupyter_client gives each kernel CurveZMQ keys when its kernelspec declares support,
    as `kernel_spec_for` does, so no other local process can read or drive the kernel.
    """
    return Config({"KernelManager": {"transport_encryption": "auto"}})


def check_kernel_starts(name: str) -> None:
    """Start the kernel `name` once and shut it down, so a broken kernel fails early.

    Raises
    ------
    KernelUnavailableError
        If the kernel does not start within ``KERNEL_START_TIMEOUT_S`` seconds.
    """
    manager = KernelManager(kernel_name=name, config=kernel_config())
    client = None
    try:
        manager.start_kernel()
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=KERNEL_START_TIMEOUT_S)
    except (NoSuchKernel, OSError, RuntimeError) as err:
        raise KernelUnavailableError(
            f"the Jupyter kernel {name!r} did not start ({type(err).__name__}: {err}); "
            "reinstall it with `pip install --force-reinstall ipykernel` in the environment "
            "that runs fleet-report"
        ) from err
    finally:
        if client is not None:
            client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


def _check_ipykernel(python: str) -> None:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('ipykernel') is None)"
    try:
        completed = subprocess.run([python, "-c", probe], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise KernelUnavailableError(
            f"cannot run the Python interpreter {python} ({err}); run fleet-report from a "
            "working Python 3.11+ environment"
        ) from err

    if completed.returncode != 0:
        raise KernelUnavailableError(
            f"no Jupyter kernel can be started: ipykernel is not installed for {python}; "
            f"install it with `{python} -m pip install ipykernel` and run the reports again"
        )


def _installed_spec(manager: KernelSpecManager, name: str) -> dict | None:
    directory = manager.find_kernel_specs().get(name)
    if directory is None:
        return None
    try:
        return json.loads(Path(directory, "kernel.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _install_kernelspec(manager: KernelSpecManager, name: str, spec: dict) -> None:
    with tempfile.TemporaryDirectory() as source:
        Path(source, "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
        try:
            # sys.prefix/share/jupyter is on this process's kernel search path, and inside
            # a virtual environment it keeps the kernelspec with the environment.
            manager.install_kernel_spec(source, kernel_name=name, prefix=sys.prefix)
        except OSError as err:
            logger.debug("cannot write a kernelspec under %s (%s); using the user directory",
                         sys.prefix, err)
            _install_for_user(manager, source, name)


def _install_for_user(manager: KernelSpecManager, source: str, name: str) -> None:
    try:
        manager.install_kernel_spec(source, kernel_name=name, user=True)
    except OSError as err:
        raise KernelUnavailableError(
            f"cannot register the Jupyter kernel {name!r} under {sys.prefix} or in the user's "
            f"Jupyter directory ({err}); run `{sys.executable} -m ipykernel install --user "
            f"--name {name}` and try again"
        ) from err
