"""A deployment's brand (common/brand.py): what a brand folder sets, how its name and texts reach every
text of the catalogues, and the faults: a malformed file is left out with one ERROR naming it, and its
part stays the default."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from common import i18n
from common.brand import DEFAULT_BRAND, load_brand, using
from common.config import ConfigError, load_settings
from tests.support.svg import dangers, meaning

SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
       b'<circle cx="20" cy="20" r="18" fill="#0b7a5a"/></svg>')


def png_bytes() -> bytes:
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (11, 122, 90)).save(out, format="PNG")
    return out.getvalue()


def brand_folder(root: Path, *, settings: dict | None = None, logo: tuple[str, bytes] | None = ("logo.svg", SVG),
                 texts: dict[str, dict] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "brand.json").write_text(json.dumps(settings if settings is not None else {
        "name": "Acme ID", "mail_from": "Acme accounts", "colors": {"accent": "#0B7A5A", "accent-dark": "#075c43"}}))
    if logo:
        (root / logo[0]).write_bytes(logo[1])
    for language, values in (texts or {}).items():
        (root / "texts").mkdir(exist_ok=True)
        (root / "texts" / f"{language}.json").write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    return root


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_folder_sets_the_name_sender_colours_logo_and_texts(tmp_path, caplog):
    folder = brand_folder(tmp_path / "brand", texts={"ja": {"mail.registered.subject": "Acme へようこそ"}})
    brand = load_brand(folder)
    assert not errors(caplog)
    assert (brand.name, brand.sender_name) == ("Acme ID", "Acme accounts")
    assert brand.colors == (("accent", "#0b7a5a"), ("accent-dark", "#075c43"))
    assert brand.logo is not None and brand.logo.mimetype == "image/svg+xml"
    assert meaning(brand.logo.body) == meaning(SVG)
    assert b"--accent: #0b7a5a;" in (brand.stylesheet or b"") and b".brand-logo" in (brand.stylesheet or b"")
    assert brand.catalogues["ja"]["mail.registered.subject"] == "Acme へようこそ"
    assert brand.catalogues["en"]["mail.registered.subject"] == "Welcome to Acme ID"


def test_the_name_replaces_the_product_name_but_not_a_command(tmp_path):
    brand = load_brand(None, name="Acme ID")
    en, ja = brand.catalogues["en"], brand.catalogues["ja"]
    assert en["web.oidc.consent_title"] == "Allow {app} to use your Acme ID account?"
    assert ja["web.oidc.logout_title"] == "Acme ID からログアウトしますか？"
    assert "`citylogin init`" in en["error.service_unavailable.tables_missing"]
    assert "(citylogin admin grant)" in en["error.last_admin"]
    assert "CITYLOGIN_METRICS_TOKEN" in en["error.invalid_token.metrics"]
    shown = [key for lang in ("en", "ja") for key, text in brand.catalogues[lang].items()
             if "citylogin" in text.replace("citylogin admin", "").replace("`citylogin init`", "")]
    assert shown == []
    # Only a name: the sender is that name, and nothing to style.
    assert brand.sender_name == "Acme ID" and brand.stylesheet is None


def test_the_default_brand_is_the_catalogues_as_they_are():
    brand = load_brand(None)
    assert brand == DEFAULT_BRAND and brand.is_default and brand.sender_name is None and brand.stylesheet is None
    assert brand.catalogues is i18n.CATALOGUES


def test_texts_render_as_the_brand_in_use_and_as_the_files_outside_it(tmp_path):
    brand = load_brand(brand_folder(tmp_path / "b", texts={"en": {"mail.lockout.subject": "Acme: locked"}}))
    with using(brand):
        assert i18n.text("mail.registered.subject", "en") == "Welcome to Acme ID"
        assert i18n.text("mail.lockout.subject", "en") == "Acme: locked"
        assert i18n.text("page.home", "ja") == "Acme ID のホーム"
    assert i18n.text("mail.registered.subject", "en") == "Welcome to citylogin"


def test_a_png_logo(tmp_path):
    brand = load_brand(brand_folder(tmp_path / "b", logo=("logo.png", png_bytes())))
    assert brand.logo is not None and brand.logo.mimetype == "image/png"


def test_the_name_from_the_environment_goes_over_the_folders(tmp_path):
    settings = load_settings(environ={"CITYLOGIN_BRAND_DIR": str(brand_folder(tmp_path / "b")),
                                      "CITYLOGIN_BRAND_NAME": " Bright Login "})
    brand = load_brand(settings.brand_dir, name=settings.brand_name)
    assert brand.name == "Bright Login" and brand.sender_name == "Acme accounts"


@pytest.mark.parametrize("name", ["a" * 65, "Acme\nBcc: x@example.com", "{app}", "Acme\u202eDI"])
def test_a_bad_name_in_the_environment_stops_the_start_naming_the_variable(name):
    with pytest.raises(ConfigError, match="CITYLOGIN_BRAND_NAME"):
        load_settings(environ={"CITYLOGIN_BRAND_NAME": name})


MALFORMED = {
    "bad JSON": ("brand.json", b'{"name": "Acme ID",}', "not JSON"),
    "not an object": ("brand.json", b'["Acme ID"]', "not a JSON object"),
    "logo not an image": ("logo.png", b"GIF89a not a png at all", "not a PNG image"),
    "svg logo not svg": ("logo.svg", b"<html><body>hi</body></html>", "not an SVG image"),
    "svg logo in UTF-7": ("logo.svg", b'<?xml version="1.0" encoding="UTF-7"?><svg xmlns="http://www.w3.org/2000/svg"/>',
                          "not an SVG image"),
    "svg logo with an entity": ("logo.svg", b'<!DOCTYPE svg [<!ENTITY a "aa">]><svg xmlns="http://www.w3.org/2000/svg"/>',
                                "DOCTYPE"),
    "texts not an object": ("texts/en.json", b'["Hi"]', "not a JSON object"),
    "texts of an unknown language": ("texts/fr.json", b'{"page.home": "Accueil"}', "not a texts file"),
    "a file it does not read": ("logo.jpg", b"\xff\xd8\xff", "not a brand file"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_file_that_cannot_be_read_is_left_out_with_one_error_naming_it(tmp_path, caplog, case):
    file_name, content, why = MALFORMED[case]
    folder = tmp_path / "brand"
    folder.mkdir()
    target = folder / file_name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert len(errors(caplog)) == 1, errors(caplog)
    assert str(target) in errors(caplog)[0] and why in errors(caplog)[0], errors(caplog)
    assert brand == DEFAULT_BRAND        # the default shown


GOOD = {"name": "Acme ID", "mail_from": "Acme accounts", "colors": {"accent": "#0b7a5a", "accent-dark": "#075c43"}}
# One bad value in brand.json each: (the field the ERROR names, brand.json with it, what the line says).
BAD_FIELDS = {
    "name too long": ("name", {**GOOD, "name": "a" * 65}, "at most 64"),
    "name with a line break": ("name", {**GOOD, "name": "Acme\nBcc: x@example.com"}, "control"),
    "name not a text": ("name", {**GOOD, "name": 7}, "a text of 1 to 64"),
    "sender with a line break": ("mail_from", {**GOOD, "mail_from": "Acme\r\nBcc: x@example.com"}, "control"),
    "sender with a brace": ("mail_from", {**GOOD, "mail_from": "{app}"}, "braces"),
    "colours not an object": ("colors", {**GOOD, "colors": "#0b7a5a"}, "must be an object"),
    "a bad colour": ("colors.accent-soft", {**GOOD, "colors": {**GOOD["colors"], "accent-soft": "red; x: url(y)"}},
                     "'red; x: url(y)' is not a colour like #0b7a5a"),
    "an unknown colour": ("colors.danger", {**GOOD, "colors": {**GOOD["colors"], "danger": "#ff0000"}},
                          "not a colour of the pages"),
    "an unknown key": ("colour", {**GOOD, "colour": {}}, "not a key of brand.json"),
}
FIELDS = ("name", "mail_from", "colors")


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_a_bad_value_falls_back_alone_with_one_error_naming_the_file_and_the_field(tmp_path, caplog, case):
    field, settings, why = BAD_FIELDS[case]
    good = load_brand(brand_folder(tmp_path / "good", settings=GOOD, logo=None))
    folder = brand_folder(tmp_path / "brand", settings=settings, logo=None)
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert len(errors(caplog)) == 1, errors(caplog)
    assert f"brand file {folder / 'brand.json'}: {field} left out" in errors(caplog)[0], errors(caplog)
    assert why in errors(caplog)[0], errors(caplog)
    top = field.split(".")[0]
    for other in FIELDS:          # every other field is the good file's
        if other != top:
            assert getattr(brand, other) == getattr(good, other), other
    if field.startswith("colors."):   # and so is every other colour
        assert brand.colors == good.colors
    elif top in FIELDS:
        assert getattr(brand, top) == getattr(DEFAULT_BRAND, top)


def test_a_bad_name_is_not_repeated_in_its_error_line(tmp_path, caplog):
    folder = brand_folder(tmp_path / "brand", settings={**GOOD, "name": "Acme\nERROR forged line"}, logo=None)
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert len(errors(caplog)) == 1 and "forged" not in errors(caplog)[0], errors(caplog)
    assert (brand.name, brand.sender_name) == ("citylogin", "Acme accounts")


def test_every_bad_value_is_one_error_of_its_own(tmp_path, caplog):
    settings = {"name": "", "mail_from": "Acme accounts", "colour": 1,
                "colors": {"accent": "green", "bg": "#fff", "danger": "#f00"}}
    folder = brand_folder(tmp_path / "brand", settings=settings, logo=None,
                          texts={"en": {"page.home": "Home of {x}", "mail.registered.subject": "Welcome to Acme",
                                        "no.such.key": "x"}})
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    named = sorted(line.split(": ")[1].removesuffix(" left out, its default shown") for line in errors(caplog))
    assert named == ["colors.accent", "colors.danger", "colour", "name", "no.such.key", "page.home"], errors(caplog)
    assert (brand.name, brand.sender_name, brand.colors) == ("citylogin", "Acme accounts", (("bg", "#fff"),))
    assert brand.texts == {"en": {"mail.registered.subject": "Welcome to Acme"}}


TEXT_FAULTS = {
    "texts key not in the catalogue": ("en", "mail.welcome.subject", "Hi", "not a key of"),
    "texts with other placeholders": ("en", "mail.verify_email.body", "Open {url}", "placeholders"),
    "texts with a stray brace": ("ja", "page.home", "ホーム {", "placeholders"),
    "texts not a text": ("en", "page.home", ["Home"], "must be a text"),
}


@pytest.mark.parametrize("case", sorted(TEXT_FAULTS))
def test_a_bad_text_falls_back_alone_and_keeps_the_files_other_texts(tmp_path, caplog, case):
    language, key, text, why = TEXT_FAULTS[case]
    kept = {"en": "mail.registered.subject", "ja": "mail.registered.subject"}[language]
    folder = brand_folder(tmp_path / "brand", texts={language: {key: text, kept: "Acme"}})
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert len(errors(caplog)) == 1, errors(caplog)
    assert f"brand file {folder / 'texts' / f'{language}.json'}: {key} left out" in errors(caplog)[0]
    assert why in errors(caplog)[0], errors(caplog)
    assert brand.texts == {language: {kept: "Acme"}} and brand.name == "Acme ID" and brand.logo is not None


def test_no_text_puts_an_article_before_the_name():
    """Every text reads right for any name: "An operator of Acme ID", never "A Acme ID operator"."""
    for name in ("Acme ID", "Umbrella", "Hub"):
        wrong = {key: text for key, text in load_brand(None, name=name).catalogues["en"].items()
                 if re.search(rf"\b(?:a|an|A|An) {name}\b", text)}
        assert not wrong, wrong


def test_an_svg_logo_is_kept_without_what_it_may_not_hold_with_one_warning_naming_it(tmp_path, caplog):
    attack = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/2000/svg" x:onload="alert(1)">'
              b'<script>alert(2)</script><a href="java&#9;script:alert(3)"><circle r="9" fill="#0b7a5a"/></a></svg>')
    folder = brand_folder(tmp_path / "brand", logo=("logo.svg", attack))
    with caplog.at_level(logging.WARNING, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert brand.logo is not None and dangers(attack) and dangers(brand.logo.body) == []
    assert b'<circle r="9" fill="#0b7a5a" />' in brand.logo.body      # what it draws is kept
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert not errors(caplog) and len(warnings) == 1 and str(folder / "logo.svg") in warnings[0], warnings
    assert "<script>" in warnings[0] and "onload" in warnings[0] and "href" in warnings[0], warnings
    # The brand is known by what it shows: the identity is the kept logo's.
    assert brand == load_brand(brand_folder(tmp_path / "clean", logo=("logo.svg", brand.logo.body)))


def test_a_malformed_file_leaves_the_others_in_use(tmp_path, caplog):
    folder = brand_folder(tmp_path / "brand")
    (folder / "texts").mkdir()
    (folder / "texts" / "en.json").write_text('{"page.home": "Home",}')
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert len(errors(caplog)) == 1 and "texts/en.json" in errors(caplog)[0]
    assert brand.name == "Acme ID" and brand.logo is not None and not brand.texts


def test_a_brand_folder_that_is_missing_is_one_error_and_the_default(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(tmp_path / "nowhere")
    assert len(errors(caplog)) == 1 and str(tmp_path / "nowhere") in errors(caplog)[0]
    assert brand == DEFAULT_BRAND


def test_a_folder_with_only_some_files_is_no_fault(tmp_path, caplog):
    folder = tmp_path / "brand"
    (folder / "..2026_11_26").mkdir(parents=True)       # a Kubernetes ConfigMap volume's own entries
    (folder / "..data").symlink_to(folder / "..2026_11_26")
    (folder / "logo.svg").write_bytes(SVG)
    with caplog.at_level(logging.ERROR, logger="citylogin.brand"):
        brand = load_brand(folder)
    assert not errors(caplog) and brand.name == "citylogin" and brand.logo is not None
