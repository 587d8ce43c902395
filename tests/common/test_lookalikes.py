"""Names a person reads as the same (common.lookalikes): case, width, marks, separators and look-alikes of other
scripts fold away, and a name that differs in a letter a reader tells apart does not; generated as an app
that wants to pass for the service or for an operator's app would write its name."""
from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from common.lookalikes import same_to_a_reader

# A few of Unicode's confusables (UTS #39) for Latin letters: Cyrillic, Greek, Armenian and others
LOOKALIKES = {"a": "аɑ", "c": "сϲ", "e": "е", "i": "іɩ", "l": "Ӏ1|", "o": "оοօ0", "p": "рρ", "s": "ѕ",
              "x": "хχ", "y": "уу", "v": "ѵν", "n": "ո", "g": "ɡ", "t": "", "d": "ԁ", "h": "һ", "j": "ј"}
SEPARATORS = " -._·\u3000'"
MARKS = "\u0301\u0300\u0308\u0327"  # acute, grave, diaeresis, cedilla: combining


def disguise(letter: str, how: int) -> str:
    """A lower-case `letter` as an impostor would write it: full width, a look-alike, with a mark, or as it is."""
    if how == 1:
        return chr(ord(letter) - ord("a") + ord("ａ"))  # full width
    if how == 2 and LOOKALIKES.get(letter):
        return LOOKALIKES[letter][0]
    if how == 3:
        return letter + MARKS[0]
    return letter


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 8)), min_size=9, max_size=9),
       st.sampled_from([str, str.upper, str.title]))
def test_every_disguise_of_the_services_name_reads_as_it(choices, case):
    name = "citylogin"
    written = ""
    for letter, (how, mark, separator) in zip(name, choices, strict=True):
        written += disguise(letter, how)
        if mark == 1:
            written += MARKS[mark]
        if separator < len(SEPARATORS) and separator % 3 == 0:
            written += SEPARATORS[separator]
    # a look-alike of a lower-case letter is one in lower case (Cyrillic ӏ reads as l, but as I among capitals)
    written = case(written) if case is str or not any(how == 2 for how, _, _ in choices) else written
    assert same_to_a_reader(name, written), written
    assert same_to_a_reader(unicodedata.normalize("NFD", written), name)


@given(st.text(alphabet="abcdefghjkmnpqrstuwxyz", min_size=3, max_size=12), st.data())
def test_a_name_with_a_letter_a_reader_tells_apart_is_another_name(name, data):
    position = data.draw(st.integers(0, len(name) - 1))
    other = data.draw(st.sampled_from([ch for ch in "bfkqwz" if ch != name[position]]))
    changed = name[:position] + other + name[position + 1:]
    assert not same_to_a_reader(name, changed), (name, changed)


def test_the_examples_an_attack_tried():
    assert same_to_a_reader("citylogin", "ＣＩＴＹＬＯＧＩＮ")
    assert same_to_a_reader("citylogin", "cityIogin")      # capital I for l
    assert same_to_a_reader("citylogin", "сitylogin")      # Cyrillic с
    assert same_to_a_reader("TV", "Тѵ")                    # Cyrillic Т and izhitsa
    assert same_to_a_reader("Notes", "N o t e s")
    assert same_to_a_reader("Microsoft", "rnicrosoft")     # rn for m
    assert same_to_a_reader("テレビ", "ﾃﾚﾋﾞ")               # half-width katakana
    assert not same_to_a_reader("citylogin", "citylogic")
    assert not same_to_a_reader("Notes", "Nates")
