// A server-side app that signs people in with citylogin through npm `openid-client` (unmodified,
// confidential client), in its own Node process, for the interoperability tests:
//
//   node openid_client_app.mjs PORT ISSUER CLIENT_ID CLIENT_SECRET [dpop]
//   node openid_client_app.mjs PORT ISSUER CLIENT_ID PRIVATE_JWK private_key_jwt
//
// With `dpop` every token request, PAR and userinfo call carries a DPoP proof by the app's own key
// (openid-client's DPoP handle, RFC 9449), so the app's tokens are bound to that key. With
// `private_key_jwt` the app has no secret: it authenticates with client assertions signed by its EC
// P-256 private key (a JWK, JSON), whose public half citylogin holds (`apps add --jwks`).
//
// GET  /login[?par=1]    → 302 to citylogin's authorization endpoint (code flow, PKCE S256, state, nonce;
//                          with par=1 the parameters pushed first, RFC 9126, and only a request_uri sent)
// GET  /callback         ← citylogin's redirect: openid-client redeems the code and checks the ID token
// POST /refresh          the refresh token grant: its answer replaces the last one, as openid-client's own
//                        docs example keeps it (the new refresh token, and the refreshed ID token that
//                        /logout then sends as its hint): {rotated, claims of the refreshed ID token}
// GET  /userinfo         the userinfo call with the current access token: {status, body}
// GET  /logout           → 302 to citylogin's end-session endpoint with the ID token as hint
// POST /backchannel-logout   OpenID Connect Back-Channel Logout: the logout token checked with jose
//                            against citylogin's JWKS, the session it names signed out here
// GET  /state            what the app knows: signed in, its sid, the logouts it received (with when)
// GET  /healthz          200
import http from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as client from "openid-client";

const [port, issuer, clientId, clientSecret, mode] = process.argv.slice(2);
const redirectUri = `http://127.0.0.1:${port}/callback`;
const BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout";

async function clientAuthentication() {
  if (mode !== "private_key_jwt") return [clientSecret, undefined];
  const { kid, ...jwk } = JSON.parse(clientSecret);
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  return [undefined, client.PrivateKeyJwt({ key, kid })];
}

const [metadata, authentication] = await clientAuthentication();
const config = await client.discovery(new URL(issuer), clientId, metadata, authentication,
  { execute: [client.allowInsecureRequests] });
const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
const bound = mode === "dpop" ? { DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair("ES256")) } : {};

const waiting = new Map();     // state → {verifier, nonce}
let signedIn = null;           // {tokens, claims}
const logouts = [];            // {sid, sub, at}
const endedSids = new Set();

function answer(response, status, body, headers = {}) {
  response.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store", ...headers });
  response.end(body === undefined ? "" : JSON.stringify(body));
}

function failure(error) {
  return { error: error.error || error.code || error.name, description: error.error_description || error.message };
}

async function readForm(request) {
  let text = "";
  for await (const chunk of request) text += chunk;
  return new URLSearchParams(text);
}

const routes = {
  "GET /healthz": async (request, response) => answer(response, 200, { status: "ok" }),

  "GET /login": async (request, response, url) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    waiting.set(state, { verifier, nonce });
    const parameters = {
      redirect_uri: redirectUri, scope: url.searchParams.get("scope") || "openid profile offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
      state, nonce,
    };
    const target = url.searchParams.get("par") ? await client.buildAuthorizationUrlWithPAR(config, parameters, bound)
      : client.buildAuthorizationUrl(config, parameters);
    answer(response, 302, undefined, { Location: target.href });
  },

  "GET /callback": async (request, response, url) => {
    const pending = waiting.get(url.searchParams.get("state"));
    waiting.delete(url.searchParams.get("state"));
    try {
      if (!pending) throw Object.assign(new Error("unknown state"), { error: "unknown_state" });
      const tokens = await client.authorizationCodeGrant(config, url, {
        pkceCodeVerifier: pending.verifier, expectedState: url.searchParams.get("state"),
        expectedNonce: pending.nonce,
      }, undefined, bound);
      signedIn = { tokens, claims: tokens.claims() };
      answer(response, 200, { claims: signedIn.claims, scope: tokens.scope, has_refresh: Boolean(tokens.refresh_token),
                              token_type: tokens.token_type });
    } catch (error) {
      answer(response, 400, failure(error));
    }
  },

  "POST /refresh": async (request, response) => {
    try {
      const tokens = await client.refreshTokenGrant(config, signedIn.tokens.refresh_token, undefined, bound);
      const rotated = tokens.refresh_token !== signedIn.tokens.refresh_token;
      signedIn = { ...signedIn, tokens };
      answer(response, 200, { rotated, claims: tokens.id_token ? tokens.claims() : null });
    } catch (error) {
      answer(response, 400, failure(error));
    }
  },

  "GET /userinfo": async (request, response) => {
    try {
      const userinfo = await client.fetchUserInfo(config, signedIn.tokens.access_token, signedIn.claims.sub, bound);
      answer(response, 200, { status: 200, body: userinfo });
    } catch (error) {
      answer(response, 200, { status: error.status || error.response?.status || 0, ...failure(error) });
    }
  },

  "GET /logout": async (request, response) => {
    const target = client.buildEndSessionUrl(config, {
      id_token_hint: signedIn.tokens.id_token, post_logout_redirect_uri: `http://127.0.0.1:${port}/`,
      state: "bye",
    });
    answer(response, 302, undefined, { Location: target.href });
  },

  "POST /backchannel-logout": async (request, response) => {
    const token = (await readForm(request)).get("logout_token") || "";
    try {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, {
        issuer: config.serverMetadata().issuer, audience: clientId, typ: "logout+jwt", maxTokenAge: "2 minutes",
      });
      if (!payload.events?.[BACKCHANNEL_EVENT] || !payload.sid || "nonce" in payload) throw new Error("not a logout token");
      logouts.push({ sid: payload.sid, sub: payload.sub, jti: payload.jti, alg: protectedHeader.alg, at: Date.now() / 1000 });
      endedSids.add(payload.sid);
      if (signedIn?.claims.sid === payload.sid) signedIn = { ...signedIn, ended: true };
      answer(response, 200, {});
    } catch (error) {
      answer(response, 400, { error: "invalid_request", description: error.message });
    }
  },

  "GET /state": async (request, response) => answer(response, 200, {
    signed_in: Boolean(signedIn && !signedIn.ended), sid: signedIn?.claims.sid || null, logouts,
  }),
};

http.createServer(async (request, response) => {
  const url = new URL(request.url, `http://127.0.0.1:${port}`);
  const route = routes[`${request.method} ${url.pathname}`];
  if (!route) return answer(response, 404, { error: "not_found" });
  try {
    await route(request, response, url);
  } catch (error) {
    answer(response, 500, failure(error));
  }
}).listen(Number(port), "127.0.0.1");
