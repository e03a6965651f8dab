"""`openencoder --help`: every command explains itself with an example; completion works."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from openencoder_cli.main import app


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if hasattr(command, "commands"):  # a group (Typer carries its own copy of Click)
        for name, sub in command.commands.items():
            paths += command_paths(sub, (*path, name))
    return paths


def test_every_command_has_help_with_an_example():
    root = typer.main.get_command(app)
    paths = command_paths(root)
    assert ("encode",) in paths and ("jobs", "watch") in paths and ("presets", "validate") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "Examples" in result.output, path
        assert f"$ openencoder {' '.join(path)}".rstrip() in result.output or not path, path


def test_shell_completion_is_offered():
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="openencoder")
    assert result.exit_code == 0 and "complete" in result.output and "openencoder" in result.output
