"""An operator command's stdout is written only once the command is complete (issue 54): a command that
fails after printing part of its answer leaves nothing on stdout, so `> file` never holds half an answer;
its prompts and errors still reach stderr as they come."""
from __future__ import annotations

import click
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.cli.output import OperatorCommand, OperatorGroup


@click.group(cls=OperatorGroup)
def tool() -> None:
    """A group of operator commands."""


@tool.command()
@click.option("--fail", is_flag=True)
def answer(fail: bool) -> None:
    click.echo('{"client_id": "half')
    click.echo("asked on stderr", err=True)
    if fail:
        raise click.ClickException("the second half could not be made")
    click.echo('"}')


@tool.command()
def ask() -> None:
    click.echo("the answer")
    if not click.confirm("Go on?", err=True):
        raise click.Abort()
    click.echo("done")


@click.command(cls=OperatorCommand)
def crash() -> None:
    click.echo("partial")
    raise RuntimeError("a bug")


def test_a_failing_command_writes_nothing_to_stdout():
    failed = CliRunner().invoke(tool, ["answer", "--fail"])
    assert failed.exit_code == 1 and failed.stdout == ""
    assert failed.stderr == "asked on stderr\nError: the second half could not be made\n"
    done = CliRunner().invoke(tool, ["answer"])
    assert done.exit_code == 0 and done.stdout == '{"client_id": "half\n"}\n'
    crashed = CliRunner().invoke(crash, [])
    assert isinstance(crashed.exception, RuntimeError) and crashed.stdout == ""


def test_a_prompt_is_seen_before_the_held_answer():
    refused = CliRunner().invoke(tool, ["ask"], input="n\n")
    assert refused.exit_code == 1 and refused.stdout == "" and "Go on?" in refused.stderr
    accepted = CliRunner().invoke(tool, ["ask"], input="y\n")
    assert accepted.exit_code == 0 and accepted.stdout == "the answer\ndone\n"


def test_every_operator_command_holds_its_output():
    context = click.Context(main)
    groups = {name: type(main.get_command(context, name)) for name in main.list_commands(context)}
    assert {name: groups[name] for name in ("keys", "apps", "admin", "password-parameters", "mail")} == \
        dict.fromkeys(("keys", "apps", "admin", "password-parameters", "mail"), OperatorGroup)
    assert groups["init"] is OperatorCommand
