"""A click group that imports each of its commands only when it is asked for (click's documented lazy group):
the command runs with the imports it needs and no other's."""
from __future__ import annotations

import importlib
from typing import Any, Mapping

import click


class LazyGroup(click.Group):
    """A group whose commands are named by where they live, "package.module:attribute", and imported on first use:
    to run one, or to list them all (`--help`, the reference's pages)."""

    def __init__(self, *args: Any, commands_at: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_at = dict(commands_at)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.commands_at})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.commands_at.get(cmd_name)
        if where is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = where.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{where} is not a click command")
        return command
