"""The app's context is taken apart where a request or a command enters, not below (docs/reference/code-layout.md,
"Domains and flows"): a function of the domains, the flows or the operators' package that takes the context
(`ctx: AppContext`), keeps it to itself and reads one or two of its values takes those values instead (the
settings, the time, the refresh secrets, the table names ...), so that it reads, and is tested, without an app.
The context stays the argument of what is made from it by design: a domain's store (its DynamoDB client and its
table names), a per-app slot (`ctx.slots`), and the public URL (`ctx.public_url()`, which refuses an app
made without one)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("accounts", "devices", "sessions", "oidc", "federation", "relying_parties", "flows", "operators")
# The values read together that make a function one of the context's own: a store, a slot, the public URL.
BY_DESIGN = ({"dynamodb", "tables"}, {"slots"}, {"slots", "settings"}, {"public_url"}, {"public_url", "settings"})


def _context_parameter(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    parameters = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
    return next((p.arg for p in parameters if p.annotation is not None
                 and ast.unparse(p.annotation).strip("'\"") == "AppContext"), None)


def _values_read(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> set[str] | None:
    """The context's attributes `function` reads (`ctx.x`, `ctx.x()`), or None if it hands the context on
    (an argument, a value kept or returned): then what it needs is its callee's to say."""
    parents = {child: node for node in ast.walk(function) for child in ast.iter_child_nodes(node)}
    read: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id == name:
            parent = parents.get(node)
            if not (isinstance(parent, ast.Attribute) and parent.value is node):
                return None
            read.add(parent.attr)
    return read


def narrow_takers(source: str) -> list[str]:
    """`name(line): values` of each function of `source` that takes the context for one or two of its
    values, none of them the context's own by design."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        name = _context_parameter(node)
        read = _values_read(node, name) if name else None
        if read and len(read) <= 2 and read not in BY_DESIGN:
            found.append(f"{node.name}({node.lineno}): {', '.join(sorted(read))}")
    return found


def test_a_function_that_reads_one_or_two_values_of_the_context_takes_them():
    found = [f"{path.relative_to(ROOT)}: {taker}" for package in PACKAGES
             for path in sorted((ROOT / package).rglob("*.py")) if "__pycache__" not in path.parts
             for taker in narrow_takers(path.read_text(encoding="utf-8"))]
    assert found == []


def test_the_check_tells_a_narrow_taker_from_the_contexts_own_and_from_a_function_that_hands_it_on():
    source = '''
def status(ctx: AppContext, session) -> str:
    return end_reason(ctx.settings, session, ctx.epoch())

def nonce(ctx: "AppContext") -> str:
    return make(ctx.refresh_secrets)

def store(ctx: AppContext) -> Store:
    return Store(ctx.dynamodb, ctx.tables.sessions)

def pusher(ctx: AppContext) -> Pusher:
    return ctx.slots.get(PUSHER)

def link(ctx: AppContext) -> str:
    return ctx.public_url() + "/not_me"

def login(ctx: AppContext, request) -> None:
    check(ctx.settings, request)
    store(ctx).write(request, now=ctx.epoch())

def three(ctx: AppContext) -> None:
    send(ctx.notifier, ctx.settings, ctx.now())

def declared(self, ctx: AppContext) -> None: ...
'''
    assert narrow_takers(source) == ["status(2): epoch, settings", "nonce(5): refresh_secrets"]
