"""Nothing a person or an app's developer reads cites the specification, which they do not have: every
command's help, every catalogue string, the pages and modules a browser loads, the OpenAPI document
and the repository's Markdown say what they mean themselves. (Comments in the code, which only its
developers read, may cite it: a browser gets the modules minified, without comments.)"""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import click

from citylogin.app import create_app
from citylogin.cli.main import main
from citylogin.webui.assets import LOCALES_DIR, web_assets

ROOT = Path(__file__).resolve().parents[2]
CITES = re.compile(r"\bSPEC\b")
NOT_OURS = {".git", ".venv", "node_modules", ".dynamodb-local", ".data", "citylogin.egg-info"}


def commands(command: click.Command, path: tuple[str, ...]):
    """(the command line, the command) for `command` and every command under it."""
    yield path, command
    if isinstance(command, click.Group):  # listed as --help lists them (the top group loads its commands lazily)
        context = click.Context(command)
        for name in command.list_commands(context):
            yield from commands(command.get_command(context, name), (*path, name))


def test_no_command_help_cites_it():
    citing = [" ".join(path) for path, command in commands(main, ("citylogin",))
              if CITES.search(command.get_help(click.Context(command, info_name=" ".join(path))))]
    assert len(list(commands(main, ("citylogin",)))) > 40    # the walk reaches the subcommands
    assert citing == []


def test_no_catalogue_string_cites_it():
    citing = [f"{path.name}: {line.strip()}" for path in sorted(LOCALES_DIR.glob("*.json"))
              for line in path.read_text(encoding="utf-8").splitlines() if CITES.search(line)]
    assert citing == []


class VisibleText(HTMLParser):
    """A page's text and attribute values, as a person or a screen reader meets them (not its comments)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.parts += [value for _, value in attrs if value]

    def handle_data(self, data):
        self.parts.append(data)


def test_no_page_or_module_a_browser_loads_cites_it():
    assets = web_assets()
    citing = []
    for name, page in assets.pages.items():
        parser = VisibleText()
        parser.feed(page.asset.plain["identity"].body.decode())
        citing += [name for part in parser.parts if CITES.search(part)]
    # What the pages load: each module by its fingerprinted address, minified; the catalogues; the CSS.
    citing += [url for url, asset in assets.by_url.items()
               if CITES.search(asset.fingerprinted["identity"].body.decode())]
    assert citing == []


def test_the_api_description_does_not_cite_it(dynamodb_endpoint, data_dir, table_prefix):
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "WARNING"})
    document = app.test_client().get("/openapi.json").get_data(as_text=True)
    assert "/oidc/token" in document
    assert [document[max(0, m.start() - 160):m.end()] for m in CITES.finditer(document)] == []


def test_no_markdown_in_the_repository_cites_it():
    citing = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in NOT_OURS]
        citing += [str((Path(folder) / name).relative_to(ROOT)) for name in files
                   if name.endswith(".md") and CITES.search((Path(folder) / name).read_text(encoding="utf-8"))]
    assert citing == []
