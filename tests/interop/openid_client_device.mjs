// A screen that signs a person in with citylogin through npm `openid-client` (unmodified) and its own
// device authorization grant (RFC 8628) at its defaults: initiateDeviceAuthorization, then
// pollDeviceAuthorizationGrant, which polls at the interval citylogin gives and adds 5 s on slow_down.
// It prints the code for the person, then (once they approved on another device) who signed in, from
// the ID token and userinfo. It never prints the device code or a token.
//
//   node openid_client_device.mjs [--issuer http://localhost:5000] [--scope "openid profile offline_access"]
//
// CLIENT_ID in the environment: an app added with `citylogin apps add NAME --device-flow --public`. An app
// added without --public also needs CLIENT_SECRET (or CLIENT_SECRET_FILE, a file holding it).
// Exit status: 0 signed in, 3 denied, 4 the code expired, 1 anything else.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as client from "openid-client";

const { values: options } = parseArgs({ options: {
  issuer: { type: "string", default: "http://localhost:5000" },
  scope: { type: "string", default: "openid profile offline_access" },
} });
const clientId = process.env.CLIENT_ID;
if (!clientId) throw new Error("set CLIENT_ID in the environment");
const secret = process.env.CLIENT_SECRET
  || (process.env.CLIENT_SECRET_FILE && readFileSync(process.env.CLIENT_SECRET_FILE, "utf8").trim());

const config = await client.discovery(new URL(options.issuer), clientId, undefined,
  secret ? client.ClientSecretBasic(secret) : client.None(),
  // plain http: a local citylogin only; in production its address is https:// and this is left out
  options.issuer.startsWith("http://") ? { execute: [client.allowInsecureRequests] } : undefined);

const started = await client.initiateDeviceAuthorization(config, { scope: options.scope });
console.log(`Open ${started.verification_uri} and enter the code: ${started.user_code}`);
console.log(`(or open ${started.verification_uri_complete})`);

let tokens;
try {
  tokens = await client.pollDeviceAuthorizationGrant(config, started);
} catch (error) {
  const code = error instanceof client.ResponseBodyError ? error.error : undefined;
  console.error(code === "access_denied" ? "The sign-in was denied on the approving device."
    : code === "expired_token" ? "The code expired before it was approved."
    : `The sign-in failed: ${code ?? error.message}`);
  process.exit(code === "access_denied" ? 3 : code === "expired_token" ? 4 : 1);
}
const claims = tokens.claims();     // the ID token, checked by openid-client (signature, iss, aud, exp)
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
console.log(JSON.stringify({ signed_in: userinfo.preferred_username, sub: userinfo.sub, token_type: tokens.token_type,
  scope: tokens.scope, has_refresh_token: Boolean(tokens.refresh_token) }));
