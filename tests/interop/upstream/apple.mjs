// Apple's quirks around node-oidc-provider, as Koa middleware (the library stays unmodified):
//
// - the client secret is a JWT the client signs (ES256 with the operator's Apple key: kid = key id,
//   iss = team id, sub = client id, aud = the provider, exp at most 6 months ahead). It is checked here
//   against the operator's public key; a good one is swapped for the client's static secret before
//   node-oidc-provider authenticates the client (client_secret_post), a bad one is 401 invalid_client.
// - the person's name comes only in a form field `user` of the form_post answer, on the first consent
//   of a sub, never again.
import { randomBytes } from 'node:crypto';

import { importJWK, importSPKI, jwtVerify } from 'jose';

const SIX_MONTHS_S = 15777000; // Apple's limit on exp, counted from now

export function staticSecret() {
  return randomBytes(24).toString('hex');
}

async function publicKey(apple) {
  const key = apple.public_key;
  return typeof key === 'string' ? importSPKI(key, 'ES256') : importJWK(key, 'ES256');
}

// Throws unless `secret` is a client secret JWT the operator's key signed for `clientId`.
async function verifyClientSecret(secret, { apple, clientId, audience }) {
  const { payload, protectedHeader } = await jwtVerify(secret, await publicKey(apple), {
    algorithms: ['ES256'], issuer: apple.team_id, subject: clientId, audience, requiredClaims: ['iat', 'exp'],
  });
  if (protectedHeader.kid !== apple.key_id) {
    throw new Error(`kid ${protectedHeader.kid} is not the key id ${apple.key_id}`);
  }
  if (payload.exp - Math.floor(Date.now() / 1000) > SIX_MONTHS_S) {
    throw new Error('exp is more than 6 months ahead');
  }
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

// Koa middleware for POST /token: the JWT client secret checked and swapped for the static one.
// node-oidc-provider reads a body an earlier middleware read from req.body (lib/shared/selective_body.js).
export function clientSecretJwt({ apple, audience, staticSecrets, log }) {
  return async function appleClientSecret(ctx, next) {
    if (ctx.method !== 'POST' || ctx.path !== '/token') {
      return next();
    }
    const params = new URLSearchParams(await readBody(ctx.req));
    const clientId = params.get('client_id');
    try {
      if (!staticSecrets.has(clientId)) {
        throw new Error(`unknown client ${clientId}`);
      }
      await verifyClientSecret(params.get('client_secret') ?? '', { apple, clientId, audience });
    } catch (error) {
      log(`apple client secret refused: ${error.code ?? ''} ${error.message}`);
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: 'client authentication failed' };
      return undefined;
    }
    params.set('client_secret', staticSecrets.get(clientId));
    ctx.req.body = params.toString();
    return next();
  };
}

const escape = (text) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
  .replace(/>/g, '&gt;');

// Koa middleware for the authorization's resume (/auth/:uid): on the first consent of a sub, the
// form_post page gets the hidden input `user` ({"name": {"firstName", "lastName"}, "email"}).
export function userFormField(state) {
  return async function appleUserField(ctx, next) {
    await next();
    const uid = /^\/auth\/([^/]+)$/.exec(ctx.path)?.[1];
    const pending = uid && state.pendingUsers.get(uid);
    if (!pending) {
      return;
    }
    state.pendingUsers.delete(uid);
    const isAnswer = typeof ctx.body === 'string' && ctx.body.includes('name="code"');
    if (!isAnswer || state.consented.has(pending.sub)) {
      return;
    }
    state.consented.add(pending.sub);
    const field = `<input type="hidden" name="user" value="${escape(JSON.stringify(pending.user))}"/>`;
    ctx.body = ctx.body.replace('<noscript>', `${field}\n    <noscript>`);
  };
}
