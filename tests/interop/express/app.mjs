// An Express app that signs people in with citylogin through npm `express-openid-connect`, unmodified,
// for the interoperability tests (SPEC §14), in its own Node process:
//
//   node express/app.mjs PORT ISSUER CLIENT_ID CLIENT_SECRET quickstart|features
//
// `quickstart` is the library's own quickstart with a client secret (its README, "authorization code
// flow"): issuerBaseURL, baseURL, clientID, secret, clientSecret and response_type=code, nothing else.
// `features` adds what an app chooses to turn on (none of it for citylogin): `idpLogout` (its /logout
// sends the person to citylogin's end_session_endpoint), `backchannelLogout` with a store (the library
// refuses the option without one; this one is in memory), and `offline_access` in the scope so that
// there is a refresh token for `req.oidc.accessToken.refresh()`.
//
// GET /            requires a sign-in (the library's default authRequired): the user's claims, as JSON
// GET /refresh     req.oidc.accessToken.refresh(): {refreshed, id_token_renewed, user}
// GET /healthz     200, without a sign-in (it is routed before the library)
// GET /logouts-heard  {stored}: how many entries the library put in the logout store, without a sign-in
// /login /callback /logout /backchannel-logout: the library's own routes
import crypto from "node:crypto";
import express from "express";
import eoc from "express-openid-connect";

const { auth } = eoc;
const [port, issuer, clientId, clientSecret, mode] = process.argv.slice(2);
const baseURL = `http://127.0.0.1:${port}`;

class MemoryStore {          // the get/set/destroy of an express-session store, in memory
  entries = new Map();
  sets = 0;                  // how many entries the library has stored: a logout token heard stores one or two

  get(id, done) { done(null, this.entries.get(id)); }

  set(id, value, done) { this.entries.set(id, value); this.sets += 1; done(null); }

  destroy(id, done) { this.entries.delete(id); done(null); }
}

const quickstart = {
  issuerBaseURL: issuer,
  baseURL,
  clientID: clientId,
  secret: crypto.randomBytes(32).toString("hex"),
  clientSecret,
  authorizationParams: { response_type: "code" },
};
const logoutStore = new MemoryStore();
const features = {
  ...quickstart,
  idpLogout: true,
  backchannelLogout: { store: logoutStore },
  authorizationParams: { response_type: "code", scope: "openid profile email offline_access" },
};

const app = express();
app.get("/healthz", (request, response) => response.json({ status: "ok" }));
// For the tests, without a sign-in: whether a logout token has been heard (the library keeps it in our store)
app.get("/logouts-heard", (request, response) => response.json({ stored: logoutStore.sets }));
app.use(auth(mode === "features" ? features : quickstart));

app.get("/", (request, response) => response.json({ signed_in: request.oidc.isAuthenticated(),
                                                     user: request.oidc.user }));

app.get("/refresh", async (request, response) => {
  const before = request.oidc.idToken;
  try {
    await request.oidc.accessToken.refresh();
    response.json({ refreshed: true, id_token_renewed: request.oidc.idToken !== before, user: request.oidc.user });
  } catch (error) {
    response.status(400).json({ refreshed: false, error: error.error || error.code || error.name,
                                description: error.error_description || error.message });
  }
});

app.listen(Number(port), "127.0.0.1");
