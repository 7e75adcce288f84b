"""The config writer: ``load_config(write_config(asm))`` is ``asm`` again, field by field and
bit for bit (compared generically over the dataclasses' fields, so a field the writer does not
know fails here)."""

import dataclasses

import numpy as np
import pytest

import assemblers as A
from assemblers.calibration.params import assembler_from_vector, nominal_vector, prior_vector
from assemblers.model.writer import config_to_dict, dumps_config, write_config


def _same(a, b, path="asm"):
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            if path == "asm" and f.name == "source":
                continue
            _same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and np.array_equal(a, b), path
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("name", A.shipped_configs())
def test_shipped_configs_round_trip(name, tmp_path):
    asm = A.load_config(name)
    write_config(tmp_path / "c.toml", asm)
    _same(asm, A.load_config(tmp_path / "c.toml"))


def test_calibrated_config_round_trips_and_is_a_fixed_point(tmp_path):
    asm = A.load_config("trio")
    rng = np.random.default_rng(1)
    p = nominal_vector(asm) + prior_vector(3, {"scales": 1e-3}) * rng.standard_normal(156)
    cal = assembler_from_vector(asm, p, name='odd "name" \\ with ünïcode\x7f')
    write_config(tmp_path / "c.toml", cal.asm)
    back = A.load_config(tmp_path / "c.toml")
    _same(cal.asm, back)
    assert back.legs_calibrated and back.name == cal.asm.name
    assert dumps_config(back) == dumps_config(cal.asm) == dumps_config(cal.config)
    assert config_to_dict(back) == cal.config


def test_writer_goes_through_the_safe_file_rules(tmp_path):
    from assemblers.files import FileError

    with pytest.raises(FileError, match="only a regular file is ever replaced"):
        write_config(tmp_path, A.load_config("duo"))
