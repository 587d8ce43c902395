"""The package graph points one way (STYLE "The house"): no cycle between the product's packages,
every arrow toward the floor in the order below, no domain reaching into another domain's store,
and every product module imports alone, in a fresh interpreter, whatever was imported before."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PRODUCT = {"tests", "bench", "scripts", "docs"}
# The rooms and their floors, lowest first: a room imports only rooms on floors below its own. A room is a
# package or one of common's sub-packages. The ground floor, common, holds what every package needs
# (settings, errors, texts, time); above it stand the infrastructure's concerns, each a sub-package of
# common (DynamoDB, cryptography; mail and its outbox on DynamoDB; the key ring; the app's context; the
# Flask plumbing). The domains (sessions, accounts, devices, relying_parties, oidc) hold the rules, the
# stores and the blueprint of each URL prefix they own; flows compose them; operators stand on the flows;
# the four services (none imports another) mount the blueprints, giving each what it asks of the packages
# above its home (common.slots); citylogin composes the services.
COMMON_PARTS = ["database", "crypto", "mail", "keys", "runtime", "web"]
INFRASTRUCTURE = [["common"], ["common/database", "common/crypto"], ["common/mail"], ["common/keys"],
                  ["common/runtime"], ["common/web"]]
FLOORS = [*INFRASTRUCTURE, ["sessions"], ["accounts"], ["devices"], ["relying_parties"], ["oidc", "federation"],
          ["flows"],
          ["operators"], ["registration", "login_app", "session_manager", "device_manager"], ["citylogin"]]
ORDER = [room for floor in FLOORS for room in floor]
SHARED = {room for floor in INFRASTRUCTURE for room in floor}  # their stores serve every domain


def product_packages(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/__init__.py") if p.parent.name not in NOT_PRODUCT)


def room_of(module: str) -> str:
    """The room a module (or a name imported from it) stands in."""
    parts = module.split(".")
    if parts[0] == "common" and len(parts) > 1 and parts[1] in COMMON_PARTS:
        return f"common/{parts[1]}"
    return parts[0]


def imported_names(path: Path) -> list[str]:
    """Absolute imports of a file: modules, and module.name for each name of a from-import."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


def is_store(module: str) -> bool:
    last = [part for part in module.split(".")[1:] if part == "store" or part.endswith("_store")]
    return bool(last)


def package_graph(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """(room -> rooms it imports, "file: module" of each reach into another domain's store)."""
    packages = product_packages(root)
    edges: dict[str, set[str]] = {}
    reaches = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            room = room_of(module)
            edges.setdefault(room, set())
            for name in imported_names(path):
                target = room_of(name)
                if name.split(".")[0] not in packages or target == room:
                    continue
                edges[room].add(target)
                if is_store(name) and target not in SHARED and package != "citylogin" \
                        and name.split(".")[0] != package:
                    reaches.append(f"{path.relative_to(root)}: {name}")
    return edges, sorted(set(reaches))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Rooms that reach themselves through others, each cycle once (as its sorted members)."""
    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    reach = {p: reachable(p) for p in edges}
    found = {tuple(sorted(q for q in reach[p] if p in reach[q])) for p in edges if p in reach[p]}
    return [list(c) for c in sorted(found)]


def against_the_order(edges: dict[str, set[str]], floors: list[list[str]] = FLOORS) -> list[str]:
    rank = {p: i for i, floor in enumerate(floors) for p in floor}
    return sorted(f"{p} -> {q}" for p, targets in edges.items() for q in targets
                  if p in rank and q in rank and rank[q] >= rank[p])


def test_the_package_graph_points_one_way():
    edges, reaches = package_graph(ROOT)
    assert set(ORDER) <= set(edges), "a room of the order is missing"
    assert set(edges) <= set(ORDER), "a room of the tree is on no floor"
    assert cycles(edges) == []
    assert against_the_order(edges) == []
    assert edges["common"] == set(), "common's ground floor imports nothing of the project"
    assert reaches == [], "a domain uses another only through its service module"


def layout_page_floors(page: Path = ROOT / "docs" / "reference" / "code-layout.md",
                       heading: str = "## The packages") -> list[list[str]]:
    """The floors of the table under `heading` in the docs' layout page: its rows `| floor | `room/`, `room.py`
    ... | what |`."""
    floors: dict[int, list[str]] = {}
    lines = page.read_text().splitlines()
    start = lines.index(heading)
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            floors.setdefault(int(cells[0]), []).extend(
                name.removesuffix("/") for name in re.findall(r"`([\w/]+/|[\w/]+\.py)`", cells[1]))
    return [floors[number] for number in sorted(floors)]


def test_the_layout_page_shows_each_package_on_its_floor():
    assert layout_page_floors() == FLOORS
    tops = {room.split("/")[0] for room in ORDER}
    assert tops == set(product_packages(ROOT)) - {"guard"}, "a package of the tree is on no floor"


def test_the_checks_catch_a_cycle_and_a_store_reach(tmp_path):
    # The tree before accounts got its own home: login_app and registration needed each other,
    # and pairing reached into device_manager's store.
    files = {"common/errors.py": "",
             "device_manager/store.py": "from common import errors\n",
             "device_manager/service.py": "from registration import pairing_service\n",
             "registration/pairing_service.py": "from device_manager.store import WriteRefused\n"
                                                "from login_app import service\n",
             "login_app/service.py": "from registration import service as users\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).parent.joinpath("__init__.py").touch()
        (tmp_path / name).write_text(text)
    edges, reaches = package_graph(tmp_path)
    assert cycles(edges) == [["device_manager", "login_app", "registration"]]
    old_order = [["common"], ["session_manager"], ["accounts"], ["device_manager"], ["registration"], ["login_app"]]
    assert against_the_order(edges, old_order) == ["device_manager -> registration", "registration -> login_app"]
    assert reaches == ["registration/pairing_service.py: device_manager.store",
                       "registration/pairing_service.py: device_manager.store.WriteRefused"]


def product_modules(root: Path = ROOT) -> list[str]:
    """Every module of every product package (found in the tree, not listed), packages first."""
    modules = []
    for package in product_packages(root):
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__main__":  # importing it runs the program
                continue
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


# A fresh interpreter per module costs a second or more of imports each (boto3, cryptography,
# pydantic), over a minute for all. So one interpreter learns, in a child that imports every product
# module, what else they load (the standard library, third-party packages and the parts of them
# loaded lazily, pydantic's model machinery or authlib's grants), loads that and nothing of the
# product, then forks a child per product module, two at a time: each child starts with no product
# module loaded and imports its one, so a module that imports only after another still fails.
FORK_EACH = r"""
import gc, importlib, os, sys, traceback
product, modules = sys.argv[1].split(","), sys.argv[2].split(",")


def is_product(name):
    return name.split(".")[0] in product


read, write = os.pipe()
if os.fork() == 0:
    os.close(read)
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException:
            pass
    with os.fdopen(write, "w") as out:
        out.write(",".join(name for name in list(sys.modules) if not is_product(name)))
    os._exit(0)
os.close(write)
with os.fdopen(read) as learnt:
    others = learnt.read().split(",")
os.wait()
for name in others:
    try:
        importlib.import_module(name)
    except BaseException:
        pass
assert not [name for name in sys.modules if is_product(name)], "product module preloaded"
gc.disable()  # the children are short-lived; and a frozen heap is not copied page by page on their writes
gc.freeze()

failed, running = 0, 0
for module in modules:
    if running == 2:
        failed += os.wait()[1] != 0
        running -= 1
    if os.fork() == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            sys.stderr.write(f"--- {module} does not import alone:\n{traceback.format_exc()}\n")
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)
    running += 1
while running:
    failed += os.wait()[1] != 0
    running -= 1
sys.exit(1 if failed else 0)
"""


def failures_importing_each_alone(root: Path, modules: list[str]) -> str | None:
    done = subprocess.run([sys.executable, "-c", FORK_EACH, ",".join(product_packages(root)), ",".join(modules)],
                          cwd=root, capture_output=True, text=True, timeout=300)
    return None if done.returncode == 0 else done.stderr.strip()[-8000:] or f"exit {done.returncode}"


def test_every_module_imports_alone_in_a_fresh_interpreter():
    modules = product_modules()
    assert "accounts.credential_service" in modules and "common" in modules and "oidc" in modules
    failures = failures_importing_each_alone(ROOT, modules)
    assert not failures, failures


def test_the_import_check_catches_a_module_that_imports_only_after_another(tmp_path):
    # a imports only after b: alone, a imports b, which needs a name a has not defined yet. c imports a.
    files = {"pa/__init__.py": "", "pa/a.py": "import json\nfrom pa import b\nNAME = 1\n",
             "pa/b.py": "from pa.a import NAME\n", "pa/c.py": "import pa.a\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    assert product_modules(tmp_path) == ["pa", "pa.a", "pa.b", "pa.c"]
    failures = failures_importing_each_alone(tmp_path, product_modules(tmp_path)) or ""
    assert sorted(re.findall(r"^--- (\S+) does not import alone", failures, re.MULTILINE)) == ["pa.a", "pa.c"]


# oidc/ is split by endpoint and standard (as node-oidc-provider's lib/actions and Authlib's rfcNNNN packages),
# its packages on floors of their own, lowest first: a package imports only packages on floors below it. The
# modules of oidc/ itself (the /oidc blueprint, the service other packages use, the OpenAPI parameters) stand
# on the top floor, above every package; any other module stands in a package.
OIDC_FLOORS = [["oidc/core"], ["oidc/app_grants"], ["oidc/discovery"], ["oidc/registration"], ["oidc/userinfo"],
               ["oidc/clients"], ["oidc/device"], ["oidc/token"], ["oidc/logout"], ["oidc/authorization"], ["oidc"]]
OIDC_TOP_MODULES = {"__init__", "views", "service", "parameters"}
OIDC_MAX_LINES = 350
STANDARD = re.compile(r"\bRFC \d{4}|OpenID Connect|FAPI 2\.0|OAuth 2\.")


def oidc_room_of(module: str, root: Path = ROOT) -> str | None:
    """The package of oidc/ a module (or a name imported from it) stands in; "oidc" for oidc/'s own modules."""
    parts = module.split(".")
    if parts[0] != "oidc":
        return None
    return f"oidc/{parts[1]}" if len(parts) > 1 and (root / "oidc" / parts[1]).is_dir() else "oidc"


def oidc_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """(package of oidc/ -> the packages of oidc/ it imports)."""
    edges: dict[str, set[str]] = {}
    for path in sorted((root / "oidc").rglob("*.py")):
        room = oidc_room_of(".".join(path.relative_to(root).with_suffix("").parts), root)
        assert room is not None
        edges.setdefault(room, set())
        for name in imported_names(path):
            target = oidc_room_of(name, root)
            if target is not None and target != room and name != "oidc":
                edges[room].add(target)
    return edges


def test_the_packages_of_oidc_point_one_way():
    edges = oidc_graph()
    order = [room for floor in OIDC_FLOORS for room in floor]
    assert set(edges) == set(order), "a package of oidc/ is on no floor, or a floor has no package"
    assert against_the_order(edges, OIDC_FLOORS) == []
    top = {path.stem for path in (ROOT / "oidc").glob("*.py")}
    assert top == OIDC_TOP_MODULES, "every module of oidc/ but the blueprint and the service stands in a package"


def test_each_package_of_oidc_says_which_standard_it_implements():
    for package in sorted(path.parent for path in (ROOT / "oidc").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        assert len(doc) > 200 and STANDARD.search(doc), f"{package.name}/__init__.py: a paragraph naming its standards"


def test_no_module_of_oidc_is_over_350_lines():
    long = [f"{path.relative_to(ROOT)}: {lines}" for path in sorted((ROOT / "oidc").rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > OIDC_MAX_LINES]
    assert long == []


def test_the_layout_page_and_oidcs_map_show_each_package_on_its_floor():
    assert layout_page_floors(heading="### Inside oidc/") == OIDC_FLOORS
    import oidc
    mapped = re.findall(r"^\d+\.\s+(\w+)\s", oidc.__doc__ or "", re.MULTILINE)  # its docstring's numbered lines
    assert [f"oidc/{name}" if name != "oidc" else name for name in mapped] == [room for [room] in OIDC_FLOORS]


def test_the_oidc_checks_catch_a_module_in_the_wrong_package(tmp_path):
    # A grant placed in core (it needs the token endpoint's tokens), a step of the authorization request in
    # token/ (it needs a check of authorization/), and a module left at oidc/'s top.
    files = {"oidc/core/refresh_grant.py": "from oidc.token import tokens\n",
             "oidc/token/tokens.py": "from oidc.core import refusals\n",
             "oidc/token/request_step.py": "from oidc.authorization.checks import check_prompt\n",
             "oidc/authorization/checks.py": "from oidc.core.refusals import because\n",
             "oidc/core/refusals.py": "", "oidc/hooks.py": "from oidc.token import tokens\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).parent.joinpath("__init__.py").touch()
        (tmp_path / name).write_text(text)
    floors = [["oidc/core"], ["oidc/token"], ["oidc/authorization"], ["oidc"]]
    assert against_the_order(oidc_graph(tmp_path), floors) == ["oidc/core -> oidc/token",
                                                              "oidc/token -> oidc/authorization"]
    assert {path.stem for path in (tmp_path / "oidc").glob("*.py")} - OIDC_TOP_MODULES == {"hooks"}
