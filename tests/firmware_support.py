"""Helpers shared by the firmware tests (``tests/firmware/test_firmware*.py``).

``unavailable(msg)``: skip outside CI, fail under ``CI=true`` (the firmware tests must run
there: ``.ci/run`` installs the Debian packages they need).  ``firmware``: a module-scoped
fixture that builds the AVR firmware and the simavr harness (incremental ``make``) or is
unavailable with the install line.  Import it into a test module with
``from firmware_support import firmware_fixture  # noqa: F401`` and ask for ``firmware``.
"""

from __future__ import annotations

import os

import pytest

from hardware.simboard import INSTALL_HINT, build, missing_tools


def unavailable(msg: str) -> None:
    """Skip outside CI; under CI=true a missing tool is a failure (these tests must run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module", name="firmware")
def firmware_fixture():
    """The built firmware (:class:`hardware.simboard.Firmware`)."""
    missing = missing_tools()
    if missing:
        unavailable(f"simulated boards need {', '.join(missing)}; install with: {INSTALL_HINT}")
    return build()
