"""Request and response models of the provider's round trip at /federation (SPEC §16): the providers offered,
the start, and what a ticket says to the browser that holds it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from federation.models import Purpose

MAX_RETURN_TO = 512


class OfferedProvider(BaseModel):
    name: str
    display_name: str
    preset: str
    signup: bool = Field(description="Whether an unknown identity may make a new account with it")


class OfferedProviders(BaseModel):
    providers: list[OfferedProvider]


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose = Field(default="sign_in", description="sign_in; link (another identity to the signed-in "
                             "account) or reauth (a fresh sign-in with one of its linked identities, to confirm an "
                             "action): both need the person's session (Bearer)")
    return_to: str | None = Field(default=None, max_length=MAX_RETURN_TO,
                                  description="A path of this service to go on to after the provider, e.g. "
                                              "\"/#account\"; same origin only")
    locale: Literal["en", "ja"] | None = Field(default=None,
                                               description="The language the web UI shows, for a refusal page")


class StartAnswer(BaseModel):
    authorization_url: str


class ReauthAnswer(BaseModel):
    """POST /federation/reauth."""

    reauth_token: str = Field(description="send it as `reauth_token` in the password's place (e-mail change, new "
                                          "recovery codes, deletion, passkeys, a first password): good once, for "
                                          "this account only")
    expires_in: int = Field(description="seconds it stays good")


class TicketView(BaseModel):
    provider: str
    display_name: str
    status: Literal["linked", "new", "email_taken"]
    purpose: Purpose
    email: str | None
    email_verified: bool
    name: str | None
    username: str | None = Field(description="The linked account's username, when status is linked")
    suggested_username: str | None
    return_to: str | None
    signup: bool
