// The benchmark's peer (bench/peer_bench.py): node-oidc-provider, unmodified, in one process, configured
// as close to citylogin's OpenID Provider as it goes, on one of two stores:
//
//   PEER_CLIENT_ID=... PEER_CLIENT_SECRET=... PEER_REDIRECT_URI=... node server.mjs PORT
//   PEER_STORE=dynamodb PEER_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 PEER_DYNAMODB_TABLE=... (same) node server.mjs PORT
//
// PEER_STORE=memory (the default): its own memory store, an LRU cache that node-oidc-provider calls
// development-only; PEER_STORE=dynamodb: dynamodb_adapter.mjs (the design of node-oidc-provider's
// DynamoDB example) on the table PEER_DYNAMODB_TABLE, which it creates at start if it is not there.
// On DynamoDB, GET /bench/dynamodb-calls answers the adapter's calls so far per operation and model.
//
// One confidential client (client_secret_basic), PKCE required (S256, the only method it knows),
// refresh tokens issued to every code grant with openid and rotated on every use, an ID token on
// refresh, introspection, revocation and userinfo, RS256 ID tokens (a fresh RSA 2048 key), opaque
// access tokens (its default). The person's part is a bench-only route instead of a login page:
// POST /interaction/:uid/login with accountId=... logs that account in and grants what the app asked,
// so a sign-in is GET /auth -> 303 /interaction/:uid -> POST that route -> 303 /auth/:uid -> 303 to
// the redirect URI with the code, all over HTTP. Binds 127.0.0.1:PORT, prints one line
// "ready {json}" (its issuer and versions), and logs nothing per request.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

import Provider from 'oidc-provider';

import { calls, createTable, documentClient, dynamoDBAdapter } from './dynamodb_adapter.mjs';

const port = Number(process.argv[2]);
const { PEER_CLIENT_ID: clientId, PEER_CLIENT_SECRET: clientSecret, PEER_REDIRECT_URI: redirectUri } = process.env;
if (!Number.isInteger(port) || port <= 0 || !clientId || !clientSecret || !redirectUri) {
  console.error('usage: PEER_CLIENT_ID=.. PEER_CLIENT_SECRET=.. PEER_REDIRECT_URI=.. node server.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const store = process.env.PEER_STORE || 'memory';
const { PEER_DYNAMODB_ENDPOINT: endpoint, PEER_DYNAMODB_TABLE: tableName } = process.env;
if (!['memory', 'dynamodb'].includes(store) || (store === 'dynamodb' && (!endpoint || !tableName))) {
  console.error('PEER_STORE is memory or dynamodb; dynamodb needs PEER_DYNAMODB_ENDPOINT and PEER_DYNAMODB_TABLE');
  process.exit(2);
}
let adapter; // undefined: node-oidc-provider's memory store
if (store === 'dynamodb') {
  const db = documentClient(endpoint);
  await createTable(db, tableName);
  adapter = dynamoDBAdapter(db, tableName);
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'peer-rs256', alg: 'RS256', use: 'sig' };

// The claims citylogin's userinfo gives by scope (sub; profile: preferred_username, locale, zoneinfo;
// email: email, email_verified), for any account id the bench names.
async function findAccount(ctx, accountId) {
  return {
    accountId,
    async claims() {
      return {
        sub: accountId, preferred_username: accountId, locale: 'en', zoneinfo: 'UTC',
        email: `${accountId}@example.com`, email_verified: true,
      };
    },
  };
}

const provider = new Provider(issuer, {
  adapter,
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingKey] },
  findAccount,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'locale', 'zoneinfo'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  // citylogin gives a refresh token to a code grant of a confidential client with offline_access;
  // node-oidc-provider drops offline_access unless prompt=consent, so here every openid grant gets one.
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && code.scopes.has('openid'),
  rotateRefreshToken: true,
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [randomBytes(32).toString('hex')] },
});

// The bench's stand-in for a login page: the account logs in and grants the scopes asked for.
async function finishInteraction(req, res, uid) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const accountId = new URLSearchParams(Buffer.concat(chunks).toString()).get('accountId');
  const details = await provider.interactionDetails(req, res);
  if (!accountId || details.uid !== uid) {
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad interaction');
    return;
  }
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false });
}

const handle = provider.callback();
const finishRoute = /^\/interaction\/([\w-]+)\/login$/;
const server = createServer((req, res) => {
  if (store === 'dynamodb' && req.method === 'GET' && req.url === '/bench/dynamodb-calls') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(calls));
    return;
  }
  const match = req.method === 'POST' && finishRoute.exec(req.url);
  if (!match) {
    handle(req, res);
    return;
  }
  finishInteraction(req, res, match[1]).catch((error) => {
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end(String(error.message));
  });
});

const require = createRequire(import.meta.url);
const oidcProviderVersion = JSON.parse(readFileSync(require.resolve('oidc-provider/package.json'), 'utf8')).version;
server.listen(port, '127.0.0.1', () => {
  const about = { issuer, node: process.version, 'oidc-provider': oidcProviderVersion, store };
  if (store === 'dynamodb') {
    about['aws-sdk'] = JSON.parse(readFileSync(require.resolve('@aws-sdk/client-dynamodb/package.json'),
      'utf8')).version;
  }
  console.log(`ready ${JSON.stringify(about)}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
