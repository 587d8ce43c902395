"""docs/reference/performance.md's tables are bench/publish.py's rendering of the committed results in
bench/published/, never typed by hand; and a published file of any bench has the shared shape."""
from __future__ import annotations

import json

import pytest

from bench import publish


def test_the_performance_page_s_tables_are_the_rendering_of_the_published_results():
    files = publish.load_published()
    assert files, "no published benchmark results in bench/published/"
    page = publish.PAGE.read_text()
    assert publish.page_with_table(page, publish.render(files)) == page, \
        "docs/reference/performance.md's tables are stale: run .venv/bin/python bench/publish.py --docs"


def test_every_file_becomes_one_table_with_every_goal_row(tmp_path):
    row = {"figure": "open event streams per core", "value": 5000, "unit": "streams", "goal": ">= 1000",
           "status": "MET", "runs": [4800, 5000, 5100]}
    for name in ("a_bench", "b_streams"):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"source": f"bench/{name}.py", "when": "2026-11-23T22:00:00+00:00", "runs": 3, "goals": [row]}))
    rendered = publish.render(publish.load_published(tmp_path))
    assert rendered.index("a_bench.json") < rendered.index("b_streams.json")
    assert rendered.count("| open event streams per core | 5,000 streams | 4,800 / 5,000 / 5,100 | >= 1000 | MET |") \
        == 2


def test_a_row_without_a_status_is_refused():
    with pytest.raises(ValueError):
        publish.check({"source": "bench/x.py", "when": "2026-11-23", "goals": [{"figure": "f", "value": 1}]})
