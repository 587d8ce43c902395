"""The `citylogin` command imports a subcommand only when it runs (citylogin.cli.lazy): a device's
`citylogin client ...` starts without the DynamoDB, Flask and settings code of the service's commands,
and every subcommand is still listed, found and run by its name."""
from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from citylogin.cli.lazy import LazyGroup
from citylogin.cli.main import COMMANDS, main

# What only the service's and the operators' commands need.
SERVICE_MODULES = ("boto3", "botocore", "flask", "pydantic", "common.config", "common.database.dynamo")


def _modules_after(*args: str) -> dict[str, object]:
    """Runs `citylogin <args>` in a fresh interpreter; its exit code, output and which of SERVICE_MODULES
    it imported."""
    program = ("import json, sys\nfrom click.testing import CliRunner\nfrom citylogin.cli.main import main\n"
               f"result = CliRunner().invoke(main, {list(args)!r})\n"
               f"print(json.dumps({{'code': result.exit_code, 'output': result.output, "
               f"'loaded': [m for m in {SERVICE_MODULES!r} if m in sys.modules]}}))")
    answer = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(answer.stdout.splitlines()[-1])


def test_each_subcommand_is_found_by_the_name_it_has():
    context = click.Context(main)
    assert main.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(context, name)
        assert isinstance(command, click.Command) and command.name == name


def test_the_device_client_starts_without_the_service_code():
    ran = _modules_after("client", "--help")
    assert ran["code"] == 0 and "pair-request" in ran["output"]
    assert ran["loaded"] == []


def test_the_top_level_help_lists_every_subcommand():
    ran = _modules_after("--help")
    assert ran["code"] == 0
    listed = {line.split()[0] for line in ran["output"].split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


def test_a_service_command_still_loads_what_it_needs():
    ran = _modules_after("keys", "--help")
    assert ran["code"] == 0 and "rotate" in ran["output"] and "common.config" in ran["loaded"]


def test_an_unknown_command_is_refused_as_click_refuses_it():
    refused = CliRunner().invoke(main, ["clinet"])
    assert refused.exit_code == 2 and "No such command 'clinet'" in refused.output


def test_a_name_that_is_not_a_command_is_an_error_of_the_group():
    group = LazyGroup(name="g", commands_at={"odd": "json:dumps"})
    with pytest.raises(TypeError, match="json:dumps is not a click command"):
        group.get_command(click.Context(group), "odd")
