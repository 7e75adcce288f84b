"""``[hardware]`` validation (issue 13): limits that make physical sense, counts that fit the
wire everywhere in the stroke, timing that lets the host notice a lost frame before the
devices' watchdog does, one address and one port per controller.  Each bad config is one
ConfigError naming the key (the CLI: exit 2, one line)."""

from __future__ import annotations

import pytest
from hardware_support import hang_guard  # noqa: F401 (autouse fixture)
from support import stderr_lines

import assemblers
from assemblers.model.config import ConfigError

BASE = """
[platforms.p]
base_radius = 0.20
top_radius = 0.15
base_pair_angle_deg = 20.0
top_pair_angle_deg = 20.0
leg_min = 0.20
leg_max = 0.32

[stack]
platforms = ["p", "p"]
"""


def load(tmp_path, extra):
    path = tmp_path / "c.toml"
    path.write_text(BASE + extra)
    return assemblers.load_config(path)


PLATFORMS = """
[[hardware.platform]]
port = "/dev/ttyUSB0"
address = {a0}
{p0}
[[hardware.platform]]
port = "{port1}"
address = {a1}
"""


BAD = {
    "counts leave int32 inside the stroke": (
        "[hardware.actuator]\noffset = 2147470000.0\n", "hardware.actuator.offset", "int32"),
    "counts leave int32 (scale)": (
        PLATFORMS.format(a0=1, a1=2, port1="/dev/ttyUSB1", p0="scale = 8.0e9"),
        "hardware.platform[0].scale", ""),
    "max_velocity 1e300 disables the gate": (
        "[hardware.actuator]\nmax_velocity = 1e300\n", "hardware.actuator.max_velocity",
        "at most 10"),
    "max_acceleration 1e300": (
        "[hardware.actuator]\nmax_acceleration = 1e300\n",
        "hardware.actuator.max_acceleration", "at most 1000"),
    "per-platform max_velocity 1e300": (
        PLATFORMS.format(a0=1, a1=2, port1="/dev/ttyUSB1", p0="max_velocity = 1e300"),
        "hardware.platform[0].max_velocity", "at most 10"),
    "a count coarser than the limits": (
        "[hardware.actuator]\nscale = 1000.0\n", "hardware.actuator.scale", "coarser"),
    "ack_timeout x (retries + 1) above the watchdog": (
        "[hardware]\nack_timeout_s = 0.2\nmax_retries = 3\nwatchdog_s = 0.5\n",
        "hardware.ack_timeout_s", "watchdog"),
    "watchdog of a day": ("[hardware]\nwatchdog_s = 86400\n", "hardware.watchdog_s", ""),
    "period longer than the watchdog": (
        "[hardware]\nrate_hz = 1.0\n", "hardware.rate_hz", "watchdog"),
    "max_gap_s above the watchdog": (
        "[hardware]\nmax_gap_s = 0.6\n", "hardware.max_gap_s", "watchdog"),
    "max_retry_rate above 1": (
        "[hardware]\nmax_retry_rate = 2.0\n", "hardware.max_retry_rate", ""),
    "duplicate addresses": (
        PLATFORMS.format(a0=1, a1=1, port1="/dev/ttyUSB1", p0=""),
        "hardware.platform[1].address", "also hardware.platform[0]"),
    "duplicate ports": (
        PLATFORMS.format(a0=1, a1=2, port1="/dev/ttyUSB0", p0=""),
        "hardware.platform[1].port", "one controller per port"),
    "a heartbeat of a nanosecond": ("[hardware]\nheartbeat_s = 1e-9\n", "hardware.heartbeat_s",
                                    ""),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_hardware_config_is_one_error_naming_the_key(tmp_path, case):
    extra, key, needle = BAD[case]
    with pytest.raises(ConfigError) as e:
        load(tmp_path, extra)
    assert e.value.key == key, str(e.value)
    assert needle in e.value.problem
    assert "\n" not in str(e.value)


def test_good_hardware_config_with_the_new_keys(tmp_path):
    asm = load(tmp_path, "[hardware]\nmax_gap_s = 0.2\nmax_lag_s = 2.0\nmax_retry_rate = 0.01\n"
               + PLATFORMS.format(a0=3, a1=4, port1="/dev/ttyUSB1", p0="scale = 1.0e6"))
    hw = asm.hardware
    assert (hw.max_gap_s, hw.max_lag_s, hw.max_retry_rate) == (0.2, 2.0, 0.01)
    assert [lk.address for lk in hw.links] == [3, 4]
    assert hw.links[0].calibration.scale[0] == 1.0e6


def test_defaults_and_shipped_configs_pass():
    for name in assemblers.shipped_configs():
        hw = assemblers.load_config(name).hardware
        assert hw.ack_timeout_s * (hw.max_retries + 1) < hw.watchdog_s
        assert len({lk.address for lk in hw.links}) == len(hw.links)


def test_cli_bad_hardware_config_exit_2(tmp_path, capsys):
    from assemblers.cli import main

    path = tmp_path / "c.toml"
    path.write_text(BASE + "[hardware.actuator]\nmax_velocity = 1e300\n")
    assert main(["info", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(stderr_lines(err)) == 1 and "hardware.actuator.max_velocity" in err
