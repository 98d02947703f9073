"""The command line: every subcommand registers, and bad input is one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corerl.cli import COMMAND_MODULES, build_parser, main


def test_help_lists_every_registered_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    assert "demo" in output
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: corerl" in capsys.readouterr().out


def test_help_does_not_import_the_heavy_stack() -> None:
    code = "import sys; from corerl.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_demo_runs_on_real_questions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--questions", "2"]) == 0
    output = capsys.readouterr().out
    assert "majority label" in output and "ground-truth" in output


def test_parser_builds() -> None:
    assert build_parser().prog == "corerl"
