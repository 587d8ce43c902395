"""The README documents every setting and opens with the two commands CI relies on."""
from pathlib import Path

from common.config import Settings, env_name

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [env_name(f) for f in Settings.model_fields if env_name(f) not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in README.split("\n\n")[1]
    assert "scripts/test.sh" in ci


def test_the_docs_do_not_point_outside_the_repository():
    root = Path(__file__).resolve().parent.parent
    texts = {"README.md": README, **{str(p.relative_to(root)): p.read_text() for p in (root / "docs").glob("*.md")}}
    assert [name for name, text in texts.items() if "../" in text] == []
