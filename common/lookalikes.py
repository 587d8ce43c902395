"""Whether two names a person would read as the same: folded for case (Unicode case folding), width and
compatibility forms (NFKC: full-width letters, ligatures), marks and separators (accents, spaces, dots and
dashes are not read), and look-alikes from other scripts (Unicode's confusables of UTS #39, as the
confusable_homoglyphs package carries them: Cyrillic а for Latin a, capital I and digit 1 for l, rn for m).

The confusables' table is loaded at the first comparison, not at import: most processes never compare names."""
from __future__ import annotations

import functools
import unicodedata
from typing import Any

# Letters and digits are read; marks (accents), separators, punctuation and symbols are not (a "C.ity-login"
# is read as "citylogin")
_READ = ("L", "N")


def same_to_a_reader(first: str, second: str) -> bool:
    """Whether `first` and `second` fold to the same name (either as written or case-folded)."""
    return bool(folded_forms(first) & folded_forms(second))


def folded_forms(name: str) -> frozenset[str]:
    """The forms `name` is compared by: its letters and digits after NFKC, without marks, mapped to their
    look-alikes' prototype; as written (capital I looks like l), case-folded, and case-folded after the mapping
    (Cyrillic Т is T, then t)."""
    letters = _letters(name)
    written = _skeleton(letters)
    return frozenset({written, _skeleton(_letters(letters.casefold())), _skeleton(_letters(written.casefold()))})


def _letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    return "".join(char for char in decomposed if unicodedata.category(char)[0] in _READ)


def _skeleton(text: str) -> str:
    """Each character as its look-alikes' prototype (UTS #39 §4's skeleton, from the package's table)."""
    return "".join(_prototype(char) for char in text)


@functools.cache
def _prototype(char: str) -> str:
    """The character `char` is a look-alike of, or itself. The table lists, for a prototype, its look-alikes, and
    for a look-alike, its prototype alone; a pair that only name each other is read as its smaller one."""
    table = _table()
    found = [entry["c"] for entry in table.get(char) or ()]
    if len(found) != 1:
        return char  # none, or a prototype with several look-alikes
    other = found[0]
    others_of_other = [entry["c"] for entry in table.get(other) or ()]
    if len(others_of_other) > 1 or len(other) > 1:
        return _letters(other) or char  # `other` is the prototype (rn for m: letters alone)
    return min(char, other)


@functools.cache
def _table() -> dict[str, Any]:
    from confusable_homoglyphs import confusables

    return confusables.confusables_data
