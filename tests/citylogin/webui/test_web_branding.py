"""A branded deployment's web UI and server texts (CITYLOGIN_BRAND_DIR; common/brand.py, web_assets.py):
its pages load its stylesheet and logo by addresses that name their content, its catalogues carry its
name and texts under their own fingerprints (never the unbranded ones'), /oidc's own pages and the
errors a person reads say its name, and a malformed brand file still serves every page (the default,
one ERROR naming the file). An unbranded app in the same process stays as it was."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import requests

from citylogin.app import create_app
from citylogin.webui.assets import web_assets
from tests.common.test_brand import SVG, brand_folder
from tests.support.svg import dangers, meaning

IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)


def app_config(dynamodb_endpoint, data_dir, table_prefix, **settings) -> dict:
    return {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir), "table_prefix": table_prefix,
            "log_level": "WARNING", "deletion_sweep_interval": 0, "ssf_push_interval": 0,
            "session_sweep_interval": 0, **settings}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return brand_folder(tmp_path_factory.mktemp("brand") / "acme",
                        texts={"en": {"page.home": "Back to Acme"}, "ja": {"mail.registered.subject": "ようこそ"}})


@pytest.fixture(scope="module")
def branded(dynamodb_endpoint, data_dir, table_prefix, folder):
    return create_app(app_config(dynamodb_endpoint, data_dir, table_prefix, brand_dir=str(folder))).test_client()


@pytest.fixture(scope="module")
def plain(dynamodb_endpoint, data_dir, table_prefix):
    return create_app(app_config(dynamodb_endpoint, data_dir, table_prefix)).test_client()


def import_map(page: str) -> dict[str, str]:
    found = IMPORT_MAP.search(page)
    assert found, page[:500]
    return json.loads(found[1])["imports"]


@pytest.mark.parametrize("path", ["/", "/admin/"])
def test_a_branded_page_loads_the_brands_stylesheet_logo_and_catalogues(branded, plain, path):
    page = branded.get(path).get_data(as_text=True)
    unbranded = plain.get(path).get_data(as_text=True)
    stylesheet = re.search(r'<link rel="stylesheet" href="(/web/brand\.[0-9a-f]{12}\.css)">', page)
    logo = re.search(r'<img class="brand-logo" src="(/web/brand-logo\.[0-9a-f]{12}\.svg)" alt="">', page)
    assert stylesheet and logo, page[:1500]
    assert f'<link rel="icon" href="{logo[1]}">' in page
    noscript = re.search(r"<noscript>([\s\S]*?)</noscript>", page)
    assert noscript and "Acme ID needs JavaScript." in noscript[1] and "citylogin" not in noscript[1]
    # Served by the addresses that name them, cached as immutable; the logo runs nothing at its own address.
    css = branded.get(stylesheet[1])
    assert css.status_code == 200 and b"--accent: #0b7a5a;" in css.data and "immutable" in css.headers["Cache-Control"]
    svg = branded.get(logo[1])
    assert meaning(svg.data) == meaning(SVG) and svg.mimetype == "image/svg+xml"
    assert "sandbox" in svg.headers["Content-Security-Policy"]
    # The catalogues: the brand's own, under fingerprints of their own content.
    branded_map, plain_map = import_map(page), import_map(unbranded)
    for locale in ("en", "ja"):
        catalogue = f"/web/locales/{locale}.json"
        assert branded_map[catalogue] != plain_map[catalogue]
        texts = branded.get(branded_map[catalogue]).get_json()
        assert texts["web.app.name"] == "Acme ID" and not [k for k, v in texts.items() if "citylogin" in v]
        assert plain.get(plain_map[catalogue]).get_json()["web.app.name"] == "citylogin"
    assert "/web/brand" not in unbranded and "citylogin needs JavaScript." in unbranded


def test_the_unbranded_pages_are_the_files_as_they_are(plain):
    page = plain.get("/").get_data(as_text=True)
    assert '<link rel="icon" href="data:,">' in page and '<span class="brand" data-i18n="web.app.name"></span>' in page
    assert plain.get("/web/brand.css").status_code == 404 and plain.get("/web/brand-logo.svg").status_code == 404
    assert web_assets().pages["index.html"].asset.plain["identity"].body.decode() == page


def test_the_plain_catalogue_address_serves_the_brands_catalogue(branded):
    en = branded.get("/web/locales/en.json")
    assert en.headers["Cache-Control"] == "no-cache"
    assert en.get_json()["web.oidc.consent_title"] == "Allow {app} to use your Acme ID account?"
    console = branded.get("/web/locales/admin/ja.json").get_json()
    assert console["web.admin.title"] == "Acme ID · オペレーター コンソール"


def test_oidc_pages_say_the_brands_name_in_its_colours(branded, plain):
    for locale, home in (("en", "Back to Acme"), ("ja", "Acme ID のホーム")):
        answer = branded.get("/oidc/authorize?client_id=nobody&response_type=code", headers={"Accept-Language": locale})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400 and home in page and "citylogin" not in page
        assert '<link rel="stylesheet" href="/web/brand.css">' in page
    plain_page = plain.get("/oidc/authorize?client_id=nobody&response_type=code").get_data(as_text=True)
    assert "citylogin home" in plain_page and "brand.css" not in plain_page


def test_an_error_a_person_reads_says_the_brands_name(branded, plain):
    body = {"username": "someone", "password": "long enough password", "device_name": "phone", "qr_code": "https://x.example/#nope"}
    refused = branded.post("/registration/", json=body, headers={"Accept-Language": "ja"})
    assert refused.status_code == 400 and "Acme ID" in refused.get_json()["detail"], refused.get_json()
    assert "citylogin" in plain.post("/registration/", json=body).get_json()["detail"]


def test_a_bad_brand_value_falls_back_alone_with_one_error_naming_it(dynamodb_endpoint, data_dir,
                                                                     table_prefix, tmp_path, caplog):
    """A colour typed wrong costs its colour alone: the pages keep the name, with app.css's colours."""
    folder = tmp_path / "brand"
    folder.mkdir()
    (folder / "brand.json").write_text('{"name": "Acme ID", "colors": {"accent": "green"}}')
    with caplog.at_level(logging.ERROR):
        client = create_app(app_config(dynamodb_endpoint, data_dir, table_prefix,
                                       brand_dir=str(folder))).test_client()
    found = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(found) == 1 and f"{folder / 'brand.json'}: colors.accent left out" in found[0], found
    page = client.get("/")
    assert page.status_code == 200 and "/web/brand" not in page.get_data(as_text=True)   # no colour left to set
    assert client.get("/web/locales/en.json").get_json()["web.app.name"] == "Acme ID"


def test_a_data_export_file_is_named_for_the_brand(branded, plain):
    """The person saves it under the product's name, never "citylogin" where a brand is set."""
    from accounts.downloads import attachment

    document = {"exported_at": "2026-11-26T09:30:00Z"}
    for client, stem in ((branded, "acme-id"), (plain, "citylogin")):
        for suffix in ("json", "html"):  # the document, and its readable copy
            with client.application.test_request_context("/account/export"):
                named = attachment("", document, suffix=suffix, mimetype="text/plain").headers["Content-Disposition"]
            assert named == f'attachment; filename="{stem}-data-2026-11-26.{suffix}"', named


def test_a_name_without_ascii_letters_leaves_the_file_its_day_alone():
    from common.brand import Brand

    assert (Brand(name="Acme ID").file_stem, Brand(name="シティ ID 2").file_stem, Brand(name="シティ").file_stem) == \
        ("acme-id", "id-2", "")


ATTACK = (Path(__file__).resolve().parents[2] / "common" / "svg" / "attacks")


def test_a_malicious_logo_is_served_as_its_safe_subset_at_every_address(make_server, tmp_path):
    """A logo of several attacks at once in the brand folder, served by a real server: the page's <img>
    address, the plain address and the page's icon all give the kept logo, nothing that runs or loads."""
    drawing = b'<rect width="10" height="10" fill="#0b7a5a"/>'
    attacks = [(ATTACK / f"{name}.svg").read_bytes() for name in
               ("onload-namespaced", "set-href", "use-external", "style-element-import", "foreignobject-iframe")]
    attack = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/2000/svg" '
              b'xmlns:xlink="http://www.w3.org/1999/xlink" x:onload="alert(1)">' + drawing +
              b"".join(body[body.index(b">", body.index(b"<svg")) + 1:body.rindex(b"</svg>")] for body in attacks) +
              b'<a xlink:href="&#106;avascript:alert(2)"><text>Acme</text></a></svg>')
    assert len(dangers(attack)) >= 10, dangers(attack)
    url, _ = make_server(brand_dir=str(brand_folder(tmp_path / "brand", logo=("logo.svg", attack))))
    page = requests.get(f"{url}/", timeout=30).text
    shown = re.search(r'<img class="brand-logo" src="(/web/brand-logo\.[0-9a-f]{12}\.svg)" alt="">', page)
    assert shown and f'<link rel="icon" href="{shown[1]}">' in page, page[:1500]
    served = [requests.get(f"{url}{address}", timeout=30) for address in (shown[1], "/web/brand-logo.svg")]
    assert [answer.status_code for answer in served] == [200, 200]
    assert served[0].content == served[1].content
    logo = served[0].content
    assert dangers(logo) == [], logo
    assert drawing.replace(b"/>", b" />") in logo and b"<text>Acme</text>" in logo      # what it draws is kept
