"""A JavaScript module without its comments, every line where it was (a stack trace from the page still
points at the source line), for the fingerprinted copies the web UI loads: a third of the modules'
compressed bytes are comments, which a person reads in the repository, not a browser on each cold load.

It reads just enough JavaScript to know where a comment can begin: outside strings, template literals
(and back inside their `${…}`) and regular expressions, which it tells from a division by the token
before the slash, as minifiers do."""
from __future__ import annotations

import re

WORD = re.compile(r"[\w$]+")
TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
# After these words a slash starts a regular expression; after any other name or number it divides.
KEYWORDS_BEFORE_EXPRESSION = frozenset({"return", "typeof", "case", "do", "else", "in", "of", "new", "delete",
                                        "void", "throw", "instanceof", "yield", "await"})
VALUE = ")"                  # what the scanner remembers after a string, template or regular expression


def without_comments(source: str) -> str:
    return TRAILING_SPACE.sub("", "".join(_Scanner(source).pieces()))


class _Scanner:
    def __init__(self, source: str) -> None:
        self.source = source
        self.depth = 0                    # open { (and ${) in code
        self.templates: list[int] = []    # the depth each open ${…} closes back to
        self.last = ""                    # the last token that was not white space

    def pieces(self):
        """The source in order, every comment dropped: a block comment leaves its line breaks, or a space
        where it sat within a line (`a/**/b` is two names)."""
        i = 0
        while i < len(self.source):
            end, token = self._token(i)
            if token is None:
                yield "\n" * self.source.count("\n", i, end) or (" " if self.source[i + 1] == "*" else "")
            else:
                yield self.source[i:end]
                if not token.isspace():
                    self.last = token
            i = end

    def _token(self, i: int) -> tuple[int, str | None]:
        """(where the token at i ends, what to remember of it; None for a comment)."""
        s, c = self.source, self.source[i]
        if s.startswith("//", i):
            end = s.find("\n", i)
            return (len(s) if end < 0 else end), None
        if s.startswith("/*", i):
            return s.index("*/", i + 2) + 2, None
        if c == "/" and self._expression_expected():
            return _regex_end(s, i), VALUE
        if c in "'\"":
            return _quoted_end(s, i), VALUE
        if c == "`" or (c == "}" and self.templates and self.templates[-1] == self.depth - 1):
            return self._template_text(i)
        word = WORD.match(s, i)
        if word:
            return word.end(), word.group()
        self.depth += (c == "{") - (c == "}")
        return i + 1, c

    def _expression_expected(self) -> bool:
        if self.last in KEYWORDS_BEFORE_EXPRESSION:
            return True
        return not (self.last in (")", "]", "}") or WORD.fullmatch(self.last))

    def _template_text(self, i: int) -> tuple[int, str]:
        """A template literal's text from its opening ` or the } closing a ${…}, to its end or next ${."""
        if self.source[i] == "}":
            self.depth -= 1
            self.templates.pop()
        j = i + 1
        while True:
            if self.source[j] == "\\":
                j += 2
            elif self.source[j] == "`":
                return j + 1, VALUE
            elif self.source.startswith("${", j):
                self.templates.append(self.depth)
                self.depth += 1
                return j + 2, "{"
            else:
                j += 1


def _quoted_end(s: str, i: int) -> int:
    j = i + 1
    while s[j] != s[i]:
        j += 2 if s[j] == "\\" else 1
    return j + 1


def _regex_end(s: str, i: int) -> int:
    j, in_class = i + 1, False
    while in_class or s[j] != "/":
        if s[j] == "\n":
            raise SyntaxError(f"a regular expression without its end at offset {i}")
        in_class = (in_class or s[j] == "[") and s[j] != "]"
        j += 2 if s[j] == "\\" else 1
    flags = WORD.match(s, j + 1)
    return flags.end() if flags else j + 1
