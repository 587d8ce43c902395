// node-oidc-provider, unmodified, configured as the mode's provider answers, with the test's Koa middleware
// in front of its routes: the faults, the person's part of the sign-in (no page: the test said who signs
// in), Apple's client secret and `user` field, and the ID token rewrites.
import Provider from 'oidc-provider';

import { CLAIMS, SCOPES, findAccount, remember, takeNextPerson } from './accounts.mjs';
import { clientSecretJwt, userFormField } from './apple.mjs';
import { tamper } from './tamper.mjs';

export const FAULT_PATHS = { discovery: '/.well-known/openid-configuration', jwks: '/jwks', token: '/token' };
const SLOW_MS = 30_000;

function clients(config, state) {
  if (config.mode !== 'apple') {
    return config.clients;
  }
  return config.clients.map((client) => ({
    ...client, client_secret: state.staticSecrets.get(client.client_id), token_endpoint_auth_method: 'client_secret_post',
  }));
}

// A fault set by POST /__test/fault holds, breaks or garbles the answer of its endpoint until cleared.
function faults(state) {
  return async function fault(ctx, next) {
    const endpoint = Object.keys(FAULT_PATHS).find((name) => FAULT_PATHS[name] === ctx.path);
    const mode = endpoint && state.faults[endpoint];
    if (mode === 'slow') {
      await new Promise((resolve) => { setTimeout(resolve, SLOW_MS); });
    } else if (mode === 'error') {
      ctx.status = 500;
      ctx.body = { error: 'server_error', error_description: 'the test made this endpoint fail' };
      return undefined;
    } else if (mode === 'garbage') {
      ctx.status = 200;
      ctx.body = '<!DOCTYPE html><title>Oops</title><p>Something went wrong';
      ctx.type = 'application/json';
      return undefined;
    }
    return next();
  };
}

// Every authorization signs in afresh: the provider never sees its session cookie, so the person the test
// names next is the one who signs in, even in a browser that signed in as someone else before (a known
// session of another account would make node-oidc-provider ask to log that one out first).
async function freshSignIn(ctx, next) {
  if (ctx.headers.cookie) {
    ctx.headers.cookie = ctx.headers.cookie.split(/;\s*/).filter((c) => !c.startsWith('_session')).join('; ');
  }
  return next();
}

// The person's part: no page; the interaction ends at once with the login and consent of the person the
// test named (or access_denied after POST /__test/cancel-next).
function interactions(provider, state) {
  return async function interaction(ctx, next) {
    const uid = ctx.method === 'GET' && /^\/interaction\/([^/]+)$/.exec(ctx.path)?.[1];
    if (!uid) {
      return next();
    }
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (state.cancelNext) {
      state.cancelNext = false;
      result = { error: 'access_denied', error_description: 'The person cancelled at the provider.' };
    } else {
      const signedIn = remember(state, takeNextPerson(state));
      state.pendingUsers.set(details.uid, signedIn);
      const grant = new provider.Grant({ accountId: signedIn.sub, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      result = { login: { accountId: signedIn.sub }, consent: { grantId: await grant.save() } };
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return undefined;
  };
}

// The next token answer's ID token rewritten the way POST /__test/tamper said, once.
function tampering(state) {
  return async function tamperIdToken(ctx, next) {
    await next();
    const kind = state.tamper;
    if (ctx.path !== '/token' || !kind || ctx.status !== 200 || !ctx.body?.id_token) {
      return;
    }
    state.tamper = null;
    ctx.body = { ...ctx.body, id_token: await tamper(kind, ctx.body.id_token, state.keys[0]) };
  };
}

export function buildProvider(config, state, { mountPath, log }) {
  const provider = new Provider(config.issuer, {
    clients: clients(config, state),
    jwks: { keys: state.keys.map((key) => ({ ...key })) },
    findAccount: async (ctx, sub) => findAccount(state, sub),
    claims: CLAIMS[config.mode],
    scopes: SCOPES[config.mode],
    responseTypes: ['code'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    cookies: { keys: state.cookieKeys },
  });
  provider.use(faults(state));
  provider.use(freshSignIn);
  provider.use(interactions(provider, state));
  if (config.mode === 'apple') {
    const audience = config.apple.audience ?? config.issuer;
    provider.use(clientSecretJwt({ apple: config.apple, audience, staticSecrets: state.staticSecrets, log }));
    provider.use(userFormField(state));
  }
  provider.use(tampering(state));
  provider.on('server_error', (ctx, error) => log(`server_error at ${ctx.path}: ${error.stack}`));
  return provider;
}
