"""The snippet finder reads Markdown as Markdown: fences in lists, markers right above a fence only,
a console block's commands, and run-by blocks that must include a file their test names."""
from __future__ import annotations

from tests.docs.snippets import Snippet, commands_of, problems, snippets_of

PAGE = '''# A page

<!-- not-run: starts the service and runs until stopped -->
```sh
citylogin serve
```

- an item:

  <!-- run-by: tests/oidc/test_authlib_client.py -->
  ```python
  --8<-- "tests/oidc/test_authlib_client.py"
  ```

<!-- not-run: this comment is not right above the fence -->

```python
print("runs")
```

```
plain
```

~~~console
$ echo one
one
$ echo two
~~~
'''


def _snippets(tmp_path) -> list[Snippet]:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    return snippets_of(page)


def test_markers_are_read_right_above_a_fence_even_in_a_list(tmp_path):
    found = _snippets(tmp_path)
    assert [(s.line, s.language, s.marker) for s in found] == [
        (4, "sh", "not-run"), (11, "python", "run-by"), (17, "python", None), (21, "", None), (25, "console", None)]
    assert found[0].reason == "starts the service and runs until stopped"
    assert found[1].body == '--8<-- "tests/oidc/test_authlib_client.py"\n'
    assert [s.runs_here for s in found] == [False, False, True, True, True]


def test_a_fence_without_a_language_and_a_reasonless_marker_are_problems(tmp_path):
    found = _snippets(tmp_path)
    assert problems(found[3]) and not problems(found[0]) and not problems(found[2])
    assert problems(Snippet("p.md", 1, "sh", "x\n", "not-run", "no"))


def test_a_run_by_block_includes_only_files_its_test_names():
    test = "tests/oidc/test_authlib_client.py"
    assert not problems(Snippet("p.md", 1, "python", f'--8<-- "{test}"\n', "run-by", test))
    assert problems(Snippet("p.md", 1, "python", 'print(1)\n', "run-by", test))
    assert problems(Snippet("p.md", 1, "python", '--8<-- "README.md"\n', "run-by", test))       # not named there
    assert problems(Snippet("p.md", 1, "python", '--8<-- "nowhere.py"\n', "run-by", test))
    assert problems(Snippet("p.md", 1, "python", f'--8<-- "{test}"\n', "run-by", "tests/nothing.py"))
    assert problems(Snippet("p.md", 1, "python", f'--8<-- "{test}"\n', "run-by", "/etc/passwd"))


def test_a_console_block_runs_its_dollar_lines_only(tmp_path):
    assert commands_of(_snippets(tmp_path)[4]) == "echo one\necho two"
