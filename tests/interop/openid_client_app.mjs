// A server-side app that signs people in with citylogin through npm `openid-client` (unmodified,
// confidential client), in its own Node process: each visitor has a session of their own (a cookie
// naming it; the tokens stay on this server), a page at `/` that says whether they are signed in, and
// a "Sign out" button that ends the citylogin session too (RP-initiated logout).
//
//   node openid_client_app.mjs [--port 3000] [--issuer http://localhost:5000] [--dpop | --private-key-jwt | --fapi2]
//
// The credentials never go on the command line (other users of the machine can read it):
//   CLIENT_ID                            the app's client_id (what `citylogin apps add` printed)
//   CLIENT_SECRET or CLIENT_SECRET_FILE  its secret, or a file holding it
//   PRIVATE_JWK or PRIVATE_JWK_FILE      with --private-key-jwt, in place of a secret: the app's EC P-256
//                                        private key (a JWK, JSON), whose public half citylogin holds
//                                        (`apps add --jwks`); client assertions signed by it
// With --dpop every token request, PAR and userinfo call carries a DPoP proof by a key of the visitor's
// sign-in (openid-client's DPoP handle, RFC 9449), so its tokens are bound to that key.
// With --fapi2 the app signs in as the FAPI 2.0 Security Profile asks of a client, with openid-client's own
// means for each: every request pushed first (buildAuthorizationUrlWithPAR), PKCE S256, private_key_jwt
// (PrivateKeyJwt, the issuer as audience) and DPoP (getDPoPHandle) on every token request and userinfo call.
//
// GET  /                 the page: signed in as whom (with "Sign out"), or "Sign in with citylogin"
// GET  /login[?par=1]    → 302 to citylogin's authorization endpoint (code flow, PKCE S256, state, nonce;
//                          with par=1, or --fapi2, the parameters pushed first, RFC 9126, and only a request_uri sent)
// GET  /callback         ← citylogin's redirect: openid-client redeems the code, checks the ID token, → /
// POST /logout           the "Sign out" button: → 302 to citylogin's end-session endpoint with the ID
//                        token as hint, back to / (the visitor's sign-in here ends at once)
// POST /backchannel-logout   OpenID Connect Back-Channel Logout: the logout token checked with jose
//                            against citylogin's JWKS, every sign-in of the session it names ended here
// GET  /me               the visitor's sign-in as JSON: {signed_in, claims, scope, token_type, has_refresh}
// POST /refresh          the refresh token grant: its answer replaces the last one, as openid-client's own
//                        docs example keeps it (the new refresh token, and the refreshed ID token that
//                        the sign-out then sends as its hint): {rotated, claims of the refreshed ID token}
// GET  /userinfo         the userinfo call with the visitor's access token: {status, body}
// GET  /state            {signed_in, sid} of the visitor, and the logout tokens received (with when)
// GET  /healthz          200
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as client from "openid-client";

const { values: options } = parseArgs({ options: {
  port: { type: "string", default: "3000" },
  issuer: { type: "string", default: "http://localhost:5000" },
  dpop: { type: "boolean", default: false },
  "private-key-jwt": { type: "boolean", default: false },
  fapi2: { type: "boolean", default: false },
} });
const usesDpop = options.dpop || options.fapi2;
const usesPrivateKeyJwt = options["private-key-jwt"] || options.fapi2;
const port = Number(options.port);
const here = `http://127.0.0.1:${port}`;
const redirectUri = `${here}/callback`;
const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";
const COOKIE = "app_session";
const SESSION_IDLE_MS = 8 * 3600 * 1000;     // a visitor's session unused this long is forgotten

function setting(name) {
  const value = process.env[name] || (process.env[`${name}_FILE`] && readFileSync(process.env[`${name}_FILE`], "utf8"));
  if (!value) throw new Error(`set ${name} (or ${name}_FILE, a file holding it) in the environment`);
  return value.trim();
}

async function clientAuthentication() {
  if (!usesPrivateKeyJwt) return [setting("CLIENT_SECRET"), undefined];
  const { kid, ...jwk } = JSON.parse(setting("PRIVATE_JWK"));
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  return [undefined, client.PrivateKeyJwt({ key, kid })];
}

const clientId = setting("CLIENT_ID");
const [clientSecret, authentication] = await clientAuthentication();
const config = await client.discovery(new URL(options.issuer), clientId, clientSecret, authentication,
  { execute: [client.allowInsecureRequests] });     // plain http: a local citylogin only
const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));

// A visitor's session: {waiting: state → {verifier, nonce}, signedIn: {tokens, claims} | null, ended, dpop, seen}
const sessions = new Map();
const logouts = [];            // {sid, sub, jti, alg, at}: the logout tokens received

function sessionOf(request, response) {
  const cookie = (request.headers.cookie || "").split(/;\s*/).find((part) => part.startsWith(`${COOKIE}=`));
  const id = cookie?.slice(COOKIE.length + 1);
  const now = Date.now();
  for (const [other, session] of sessions) if (now - session.seen > SESSION_IDLE_MS) sessions.delete(other);
  if (id && sessions.has(id)) {
    const session = sessions.get(id);
    session.seen = now;
    return session;
  }
  const fresh = randomBytes(32).toString("base64url");
  const session = { waiting: new Map(), signedIn: null, ended: false, dpop: null, seen: now };
  sessions.set(fresh, session);
  const secure = here.startsWith("https:") ? "; Secure" : "";
  response.setHeader("Set-Cookie", `${COOKIE}=${fresh}; Path=/; HttpOnly; SameSite=Lax${secure}`);
  return session;
}

async function bound(session) {
  if (!usesDpop) return {};
  session.dpop ||= client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256"));
  return { DPoP: session.dpop };
}

function answer(response, status, body, headers = {}) {
  response.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
  response.end(body === undefined ? "" : JSON.stringify(body));
}

function redirect(response, location) {
  response.writeHead(302, { Location: location, "Cache-Control": "no-store" });
  response.end();
}

function failure(error) {
  return { error: error.error || error.code || error.name, description: error.error_description || error.message };
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(session, url) {
  const signedIn = session.signedIn && !session.ended;
  const notice = session.ended ? "Your citylogin session has ended. Sign in again."
    : url.searchParams.get("error") ? `Not signed in (${url.searchParams.get("error")}).`
    : url.searchParams.get("state") === "signed-out" ? "Signed out of this app and citylogin." : "";
  const body = signedIn
    ? `<p>Signed in as <strong id="who">${escape(session.signedIn.claims.preferred_username || session.signedIn.claims.sub)}</strong></p>
  <form method="post" action="/logout"><button id="sign-out" type="submit">Sign out</button></form>`
    : `<p><a id="sign-in" href="/login">Sign in with citylogin</a></p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Node app</title></head>
<body data-state="${signedIn ? "signed-in" : "signed-out"}">
  <h1>Node app</h1>
  <p id="status" role="status">${escape(notice)}</p>
  ${body}
</body></html>`;
}

async function readForm(request) {
  let text = "";
  for await (const chunk of request) text += chunk;
  return new URLSearchParams(text);
}

const routes = {
  "GET /healthz": async (request, response) => answer(response, 200, { status: "ok" }),

  "GET /": async (request, response, url, session) => {
    response.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    response.end(page(session, url));
  },

  "GET /login": async (request, response, url, session) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    session.waiting.set(state, { verifier, nonce });
    const parameters = {
      redirect_uri: redirectUri, scope: url.searchParams.get("scope") || "openid profile offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      state, nonce,
    };
    const target = url.searchParams.get("par") || options.fapi2
      ? await client.buildAuthorizationUrlWithPAR(config, parameters, await bound(session))
      : client.buildAuthorizationUrl(config, parameters);
    redirect(response, target.href);
  },

  "GET /callback": async (request, response, url, session) => {
    const state = url.searchParams.get("state");
    const pending = session.waiting.get(state);
    session.waiting.delete(state);
    try {
      if (!pending) throw Object.assign(new Error("unknown state"), { error: "unknown_state" });
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: pending.verifier, expectedState: state, expectedNonce: pending.nonce,
      }, undefined, await bound(session));
      session.signedIn = { tokens, claims: tokens.claims() };
      session.ended = false;
      redirect(response, "/");
    } catch (error) {
      redirect(response, `/?${new URLSearchParams({ error: failure(error).error })}`);
    }
  },

  "GET /me": async (request, response, url, session) => {
    const signedIn = session.signedIn && !session.ended;
    answer(response, 200, signedIn ? {
      signed_in: true, claims: session.signedIn.claims, scope: session.signedIn.tokens.scope,
      has_refresh: Boolean(session.signedIn.tokens.refresh_token), token_type: session.signedIn.tokens.token_type,
    } : { signed_in: false });
  },

  "POST /refresh": async (request, response, url, session) => {
    if (!session.signedIn) return answer(response, 401, { error: "signed_out" });
    try {
      const tokens = await client.refreshTokenGrant(config, session.signedIn.tokens.refresh_token, undefined,
        await bound(session));
      const rotated = tokens.refresh_token !== session.signedIn.tokens.refresh_token;
      session.signedIn = { ...session.signedIn, tokens };
      answer(response, 200, { rotated, claims: tokens.id_token ? tokens.claims() : null });
    } catch (error) {
      answer(response, 400, failure(error));
    }
  },

  "GET /userinfo": async (request, response, url, session) => {
    if (!session.signedIn) return answer(response, 401, { error: "signed_out" });
    try {
      const userinfo = await client.fetchUserInfo(config, session.signedIn.tokens.access_token,
        session.signedIn.claims.sub, await bound(session));
      answer(response, 200, { status: 200, body: userinfo });
    } catch (error) {
      answer(response, 200, { status: error.status || error.response?.status || 0, ...failure(error) });
    }
  },

  "POST /logout": async (request, response, url, session) => {
    const signedIn = session.signedIn;
    session.signedIn = null;
    session.ended = false;
    if (!signedIn) return redirect(response, "/");
    const target = client.buildEndSessionUrl(config, {
      id_token_hint: signedIn.tokens.id_token, post_logout_redirect_uri: `${here}/`, state: "signed-out",
    });
    redirect(response, target.href);
  },

  "POST /backchannel-logout": async (request, response) => {
    const token = (await readForm(request)).get("logout_token") || "";
    try {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, {
        issuer: config.serverMetadata().issuer, audience: clientId, typ: "logout+jwt", maxTokenAge: "2 minutes",
      });
      if (!payload.events?.[BACKCHANNEL_EVENT] || !payload.sid || "nonce" in payload) throw new Error("not a logout token");
      logouts.push({ sid: payload.sid, sub: payload.sub, jti: payload.jti, alg: protectedHeader.alg, at: Date.now() / 1000 });
      for (const session of sessions.values()) {
        if (session.signedIn?.claims.sid === payload.sid) session.ended = true;
      }
      answer(response, 200, {});
    } catch (error) {
      answer(response, 400, { error: "invalid_request", description: error.message });
    }
  },

  "GET /state": async (request, response, url, session) => answer(response, 200, {
    signed_in: Boolean(session.signedIn && !session.ended), sid: session.signedIn?.claims.sid || null, logouts,
  }),
};

const STATELESS = new Set(["GET /healthz", "POST /backchannel-logout"]);   // citylogin's calls carry no cookie

http.createServer(async (request, response) => {
  const url = new URL(request.url, here);
  const name = `${request.method} ${url.pathname}`;
  const route = routes[name];
  if (!route) return answer(response, 404, { error: "not_found" });
  try {
    await route(request, response, url, STATELESS.has(name) ? null : sessionOf(request, response));
  } catch (error) {
    answer(response, 500, failure(error));
  }
}).listen(port, "127.0.0.1");
