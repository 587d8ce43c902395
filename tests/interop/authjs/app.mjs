// An Express app that signs people in with citylogin through Auth.js (npm `@auth/express`), unmodified,
// for the interoperability tests (SPEC §14), in its own Node process:
//
//   AUTH_SECRET=... AUTH_CITYLOGIN_ID=... AUTH_CITYLOGIN_SECRET=... AUTH_CITYLOGIN_ISSUER=... \
//     node authjs/app.mjs PORT
//
// Configured as Auth.js's Express guide and its "custom OIDC provider" page say: one provider of type
// "oidc" whose client id, secret and issuer Auth.js reads from its own AUTH_<ID>_* variables, and
// AUTH_SECRET for its cookies. Nothing else: Auth.js's defaults (PKCE and state, client_secret_basic,
// scope "openid profile email", its own sign-in and sign-out pages).
//
// /auth/...   Auth.js (its sign-in page, /auth/signin/citylogin, /auth/callback/citylogin, /auth/signout)
// GET /       {signed_in, user}: Auth.js's session of this browser (getSession)
// GET /healthz 200
import express from "express";
import { ExpressAuth, getSession } from "@auth/express";

const [port] = process.argv.slice(2);
const authConfig = { providers: [{ id: "citylogin", name: "citylogin", type: "oidc" }] };

const app = express();
app.set("trust proxy", true);
// Auth.js's guide mounts it at "/auth/*" under Express 4; Express 5 (npm's current) takes the prefix.
app.use("/auth", ExpressAuth(authConfig));

app.get("/healthz", (request, response) => response.json({ status: "ok" }));

app.get("/", async (request, response) => {
  const session = await getSession(request, authConfig);
  response.json({ signed_in: Boolean(session?.user), user: session?.user ?? null });
});

app.listen(Number(port), "127.0.0.1");
