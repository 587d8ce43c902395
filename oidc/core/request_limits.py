"""What the OpenID Provider keeps for requests from one address (SPEC §14): authorization requests wait
10 minutes for the person and pushed requests (PAR) 60 s, so each address may have only so many kept a
minute (CITYLOGIN_AUTHORIZATION_REQUESTS_PER_MINUTE_PER_IP, CITYLOGIN_PUSHED_REQUESTS_PER_MINUTE_PER_IP).

The count is an entry of the very transaction that keeps the request (common.web.rate_limits, in DynamoDB,
so every process sees it): only a request that would be kept is counted, and one refused at once costs
nothing to keep, so a person's mistyped link or an app's misconfiguration never uses up the address's
allowance of a busy office behind one NAT address."""
from __future__ import annotations

from authlib.oauth2 import OAuth2Error

from common.database.guarded_write import GuardedWrite
from oidc.core import refusals
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore, limit_subject

WINDOW_SECONDS = 60
AUTHORIZE, PAR, REGISTER = "authorize", "par", "register"  # REGISTER: apps that register themselves (RFC 7591)
RATE_LIMITED = "rate_limited"  # the refusal's reason in the log and the metric (oidc.core.refusals)


class TooManyRequests(OAuth2Error):
    """RFC 6749 §4.1.2.1's `temporarily_unavailable`: by redirect at /oidc/authorize; at /oidc/par a 429
    in RFC 6749 §5.2's format, which RFC 9126 §2.3 allows ("using the appropriate error code from
    therein or from Section 4.1.2.1"), with Retry-After. Not RFC 8628's `slow_down`: that asks a device
    to poll less often, and an app pushing for its users is no poller."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, *, retry_after: int, redirect_uri: str | None = None, what: str = "sign-in requests") -> None:
        super().__init__(f"Too many {what} from this address; try again in a minute.", redirect_uri=redirect_uri)
        self.retry_after = retry_after
        refusals.because(self, RATE_LIMITED)


def counted(ctx: AppContext, *, kind: str, ip: str | None, redirect_uri: str | None = None) -> GuardedWrite:
    """The count of one kept request of `kind` (AUTHORIZE, PAR or REGISTER) from `ip`, as an entry of the
    transaction that keeps it; refused (TooManyRequests, to `redirect_uri` if given) once the address's
    minute is full."""
    limit = {AUTHORIZE: ctx.settings.authorization_requests_per_minute_per_ip,
             PAR: ctx.settings.pushed_requests_per_minute_per_ip,
             REGISTER: ctx.settings.oidc_registrations_per_minute_per_ip}[kind]
    what = "registrations" if kind == REGISTER else "sign-in requests"
    now = ctx.epoch()
    item = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take_item(
        f"oidc_{kind}#ip:{limit_subject(ip)}", limit=limit, window_seconds=WINDOW_SECONDS, now=now)
    retry_after = WINDOW_SECONDS - now % WINDOW_SECONDS
    return GuardedWrite(item=dict(item), refusal=lambda: TooManyRequests(retry_after=retry_after,
                                                                         redirect_uri=redirect_uri, what=what))
