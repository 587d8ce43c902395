"""A deployment's brand (common/brand.py): what a brand folder sets, how its name and texts reach every
text of the catalogues, and the faults: a malformed file is left out with one ERROR naming it, and its
part stays the default."""
from __future__ import annotations

import json
import logging
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
    "unknown key": ("brand.json", b'{"name": "Acme ID", "colour": {}}', "unknown key 'colour'"),
    "bad colour": ("brand.json", b'{"colors": {"accent": "red; background: url(x)"}}', "colors.accent"),
    "unknown colour": ("brand.json", b'{"colors": {"danger": "#ff0000"}}', "unknown colour 'danger'"),
    "name with a line break": ("brand.json", b'{"mail_from": "Acme\\r\\nBcc: x@example.com"}', "mail_from"),
    "logo not an image": ("logo.png", b"GIF89a not a png at all", "not a PNG image"),
    "svg logo not svg": ("logo.svg", b"<html><body>hi</body></html>", "not an SVG image"),
    "svg logo in UTF-7": ("logo.svg", b'<?xml version="1.0" encoding="UTF-7"?><svg xmlns="http://www.w3.org/2000/svg"/>',
                          "not an SVG image"),
    "svg logo with an entity": ("logo.svg", b'<!DOCTYPE svg [<!ENTITY a "aa">]><svg xmlns="http://www.w3.org/2000/svg"/>',
                                "DOCTYPE"),
    "texts key not in the catalogue": ("texts/en.json", b'{"mail.welcome.subject": "Hi"}', "not a key of"),
    "texts with other placeholders": ("texts/en.json", b'{"mail.verify_email.body": "Open {url}"}', "placeholders"),
    "texts with a stray brace": ("texts/ja.json", '{"page.home": "ホーム {"}'.encode(), "placeholders"),
    "texts of an unknown language": ("texts/fr.json", b'{"page.home": "Accueil"}', "not a texts file"),
    "a file it does not read": ("logo.jpg", b"\xff\xd8\xff", "not a brand file"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_left_out_with_one_error_naming_it(tmp_path, caplog, case):
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
    folder = brand_folder(tmp_path / "brand", texts={"en": {"page.home": "Home of {x}"}})
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
