// The upstream OpenID Provider of the federation tests (SPEC §16): node-oidc-provider, unmodified, in one
// Node 22 process, answering as Google, as Apple or as a company's provider (tests/support/upstream.py):
//
//   node server.mjs CONFIG.json
//
// CONFIG.json: {"port", "mode": "google"|"apple"|"company", "issuer" (http://127.0.0.1:PORT, may have a
// path), "clients": [{client_id, client_secret, redirect_uris, token_endpoint_auth_method, ...}],
// "apple": {"public_key" (SPKI PEM or JWK, ES256), "team_id", "key_id", "audience" (default: the issuer)}}.
// Binds 127.0.0.1:PORT and prints one line "ready {json}" (issuer, versions). The provider's routes live
// under the issuer's path; the test's hooks under /__test/ at the root (see TEST_HOOKS).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

import { staticSecret } from './apple.mjs';
import { FAULT_PATHS, buildProvider } from './provider.mjs';
import { TAMPER_KINDS } from './tamper.mjs';

const MODES = ['google', 'apple', 'company'];
const FAULT_MODES = ['slow', 'garbage', 'error', null];

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
if (!MODES.includes(config.mode) || !Number.isInteger(config.port) || !config.issuer
    || (config.mode === 'apple' && !config.apple)) {
  console.error('usage: node server.mjs CONFIG.json (port, mode google|apple|company, issuer, clients, apple)');
  process.exit(2);
}
const log = (line) => console.error(`upstream: ${line}`);
const mountPath = new URL(config.issuer).pathname.replace(/\/$/, '');

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

// What the test hooks change and the provider reads; kept when the provider is built again with new keys
// (its grants, codes and sessions are in node-oidc-provider's memory store, which instances share).
const state = {
  mode: config.mode,
  keys: [signingKey()], // the first signs
  cookieKeys: [randomBytes(32).toString('hex')],
  staticSecrets: new Map(config.clients.map((client) => [client.client_id, staticSecret()])),
  accounts: new Map(), // sub -> claims
  relays: new Map(), // Apple: sub -> private-relay address
  consented: new Set(), // Apple: the subs that got their `user` field
  pendingUsers: new Map(), // Apple: interaction uid -> {sub, user}
  nextLogin: null,
  cancelNext: false,
  faults: {},
  tamper: null,
};

let handler = buildProvider(config, state, { mountPath, log }).callback();

function rotate({ drop_old: dropOld = false }) {
  const key = signingKey();
  state.keys = dropOld ? [key] : [key, state.keys[0]];
  handler = buildProvider(config, state, { mountPath, log }).callback();
  return { kid: key.kid, kids: state.keys.map((k) => k.kid) };
}

class BadHook extends Error {}

function check(valid, message) {
  if (!valid) throw new BadHook(message);
}

const TEST_HOOKS = {
  'next-login': (body) => {
    check(typeof body.sub === 'string' && body.sub, 'next-login needs a sub');
    state.nextLogin = body;
  },
  'cancel-next': () => { state.cancelNext = true; },
  rotate,
  fault: ({ endpoint, mode = null }) => {
    check(endpoint in FAULT_PATHS && FAULT_MODES.includes(mode), `fault: endpoint ${Object.keys(FAULT_PATHS)}, mode ${FAULT_MODES}`);
    state.faults[endpoint] = mode;
  },
  tamper: ({ kind = null }) => {
    check(kind === null || TAMPER_KINDS.includes(kind), `tamper: kind one of ${TAMPER_KINDS} or null`);
    state.tamper = kind;
  },
};

async function testHook(req, res, name) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString();
  try {
    check(req.method === 'POST' && name in TEST_HOOKS, `no hook POST /__test/${name}`);
    const answer = (await TEST_HOOKS[name](text ? JSON.parse(text) : {})) ?? {};
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
  } catch (error) {
    const status = error instanceof BadHook || error instanceof SyntaxError ? 400 : 500;
    res.writeHead(status, { 'Content-Type': 'text/plain' }).end(String(error.message));
  }
}

// The provider's routes under the issuer's path (req.originalUrl keeps it for the URLs it writes).
function route(req, res) {
  const { pathname } = new URL(req.url, 'http://upstream');
  if (pathname.startsWith('/__test/')) {
    return testHook(req, res, pathname.slice('/__test/'.length));
  }
  if (mountPath) {
    if (pathname !== mountPath && !pathname.startsWith(`${mountPath}/`)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not under the issuer');
      return undefined;
    }
    req.originalUrl = req.url;
    req.url = req.url.slice(mountPath.length).replace(/^(?!\/)/, '/');
  }
  return handler(req, res);
}

const server = createServer((req, res) => {
  Promise.resolve(route(req, res)).catch((error) => {
    log(`${req.method} ${req.url}: ${error.stack}`);
    if (!res.headersSent) res.writeHead(500).end();
  });
});

const require = createRequire(import.meta.url);
const version = JSON.parse(readFileSync(require.resolve('oidc-provider/package.json'), 'utf8')).version;
server.listen(config.port, '127.0.0.1', () => {
  const about = { issuer: config.issuer, mode: config.mode, node: process.version, 'oidc-provider': version };
  console.log(`ready ${JSON.stringify(about)}`);
});
// A held (slow) answer does not hold the stop.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
