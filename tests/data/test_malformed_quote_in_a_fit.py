"""A malformed quote, through the whole `python -m project.fit` in a subprocess as a user runs it: one line naming
the row and the line, exit status 2, no traceback, no run folder."""

import pytest

from tests.test_fit_end_to_end import fit, tiny_args

pytestmark = pytest.mark.slow


def test_a_malformed_quote_stops_the_fit_command_in_one_line_naming_the_row(tmp_path, tiny_encoder):
    args = tiny_args(tmp_path, tiny_encoder)
    train = tmp_path / "train.csv"
    lines = train.read_bytes().split(b"\r\n")
    lines[10] = b'"a great" film,pos,the plot'  # text after a closing quote: not CSV
    train.write_bytes(b"\r\n".join(lines))
    result = fit(*args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert f"{train}: row 10 (line 11): ',' expected after '\"'" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()
