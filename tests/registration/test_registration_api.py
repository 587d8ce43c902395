"""POST /registration/ in-process against DynamoDB Local: success shapes and bad input."""
from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from accounts import user_service as users
from common.crypto.certificates import certificate_issued_by
from registration.app_registration import create_app
from tests.conftest import app_settings, unique_name
from tests.support import keys


@pytest.fixture(scope="module")
def app(dynamodb_endpoint, data_dir, table_prefix):
    """One app for the module: its tests share nothing but the tables, each with names of its own."""
    return create_app(app_settings(dynamodb_endpoint, data_dir, table_prefix))


@pytest.fixture
def client(app):
    return app.test_client()


def new_user(**overrides):
    name = unique_name()
    return {"username": name, "email": f"{name}@example.com", "password": "correct horse battery",
            **overrides}


def stored_user_count(app, username: str) -> int:
    """Users stored under `username` (tests may scan; request paths never do)."""
    context = app.extensions["citylogin"]
    pages = context.dynamodb.get_paginator("scan").paginate(
        TableName=context.tables.users, FilterExpression="#n = :n",
        ExpressionAttributeNames={"#n": "username"}, ExpressionAttributeValues={":n": {"S": username}})
    return sum(page["Count"] for page in pages)


def load_cert(body) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(body["client_cert"]))


def test_get_describes_the_service(client):
    response = client.get("/registration/")
    assert response.status_code == 200
    assert "username" in response.get_json()["new_user_fields"]


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "ml-dsa-87"])
def test_registration_with_device_public_key(app, client, kind):
    device_key = keys.new_key(kind)
    response = client.post("/registration/", json=new_user(public_key=keys.public_pem(device_key)))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    cert = load_cert(body)
    assert certificate_issued_by(app.extensions["citylogin"].ca, cert)
    assert cert.public_key() == device_key.public_key()
    assert "private_key" not in body
    assert response.headers["Cache-Control"] == "no-store"


def test_certificate_is_a_client_certificate_for_the_device(app, client):
    response = client.post("/registration/", json=new_user(device_name="laptop"))
    body = response.get_json()
    assert response.status_code == 201
    cert = load_cert(body)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == body["uuid"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"urn:citylogin:device:{body['device_id']}"]
    assert body["device_name"] == "laptop"
    assert body["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    ca = x509.load_pem_x509_certificate(body["ca_cert"].encode())
    cert.verify_directly_issued_by(ca)


def test_registration_with_csr(app, client):
    device_key = keys.new_key("ecdsa-p256")
    response = client.post("/registration/", json=new_user(csr=keys.csr_pem(device_key)))
    assert response.status_code == 201
    assert load_cert(response.get_json()).public_key() == device_key.public_key()


def test_username_taken_and_email_held_case_insensitively(app, client):
    first = new_user()
    created = client.post("/registration/", json=first)
    assert created.status_code == 201
    again = client.post("/registration/", json=new_user(username=first["username"].upper()))
    assert (again.status_code, again.get_json()["code"]) == (409, "username_taken")
    # A held address is not told apart (SPEC §4): the account is made, but the claim stays the first one's.
    same_email = client.post("/registration/", json=new_user(email=first["email"].upper()))
    assert same_email.status_code == 201
    context = app.extensions["citylogin"]
    assert users.email_holder(context, email=first["email"]) == created.get_json()["uuid"]
    assert users.get_user(context, user_uuid=same_email.get_json()["uuid"]).email == ""


BAD_BODIES = [
    ("not json", 400, "invalid_json", None),
    ("[1, 2]", 400, "invalid_json", None),
    ('"text"', 400, "invalid_json", None),
    ("", 400, "invalid_json", None),
]


@pytest.mark.parametrize("raw,status,code,_", BAD_BODIES)
def test_malformed_bodies(client, raw, status, code, _):
    response = client.post("/registration/", data=raw, content_type="application/json")
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code


def test_one_mebibyte_body_is_413(client):
    response = client.post("/registration/", data="x" * (1 << 20), content_type="application/json")
    assert (response.status_code, response.get_json()["code"]) == (413, "payload_too_large")


def bad_field_cases():
    return [
        ({"email": "no-at-sign.example.com"}, "email"),
        ({"username": "ab"}, "username"),
        ({"username": "bad name!"}, "username"),
        ({"password": "short12"}, "password"),
        ({"password": "password1"}, "password"),
        ({"password": 12345678}, "password"),
        ({"username": ["list"]}, "username"),
        ({"public_key": "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----"}, "public_key"),
        ({"public_key": keys.rsa_public_pem()}, "public_key"),
        ({"csr": keys.tampered_csr_pem(keys.new_key())}, "csr"),
        ({"csr": "not a csr"}, "csr"),
        ({"public_key": keys.public_pem(keys.new_key()), "csr": keys.csr_pem(keys.new_key())}, "public_key"),
    ]


@pytest.mark.parametrize("overrides,field", bad_field_cases())
def test_invalid_fields_store_nothing(app, client, overrides, field):
    body = new_user(**overrides)
    response = client.post("/registration/", json=body)
    assert response.status_code == 400, response.get_json()
    problem = response.get_json()
    assert (problem["code"], problem["field"]) == ("invalid_field", field)
    if isinstance(body["username"], str):
        assert stored_user_count(app, body["username"]) == 0


def test_missing_fields_are_named(client):
    response = client.post("/registration/", json={"username": unique_name()})
    problem = response.get_json()
    assert (response.status_code, problem["code"]) == (400, "missing_fields")
    assert sorted(problem["fields"]) == ["email", "password"]


def test_qr_code_body_without_credentials_names_them(client):
    response = client.post("/registration/", json={"qr_code": "abc"})
    problem = response.get_json()
    assert (response.status_code, problem["code"]) == (400, "missing_fields")
    assert sorted(problem["fields"]) == ["password", "username"]
