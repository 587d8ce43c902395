// This browser's device keys: a non-extractable ECDSA P-256 key pair made by WebCrypto,
// kept in IndexedDB (of the page's origin) with the certificate the server issued for it, one
// record per account. The key signs the login challenge and every DPoP proof of the session.
// CryptoKey objects are structured-cloneable, so IndexedDB stores them without ever
// exposing the private key bytes.

const DB_NAME = "citylogin";
const STORE = "devices";
export const LOGIN_PURPOSE = "citylogin-login:";   // the server verifies the signature over this prefix + challenge
export const RENEW_PURPOSE = "citylogin-renew:";   // ... and, to renew the certificate, over this one (SPEC §4)
export const SSO_PURPOSE = "citylogin-sso:";       // ... and, to sign in to an app with a live session, this (§14)
export const SIGN_OUT_PURPOSE = "citylogin-sign-out:";   // ... and, to end it for an app's logout, this
export const RESUME_PURPOSE = "citylogin-resume:";   // ... and, to resume it in another tab, this (§4)
export const DEVICE_FLOW_PURPOSE = "citylogin-device-flow:";   // ... and, to approve a TV's code with it (§14)

/** The server compares usernames after NFKC, case-insensitively (SPEC §4 registration). */
export function accountKey(username) {
  return username.normalize("NFKC").toLowerCase();
}

export function createDeviceKey() {
  return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
}

/** The public key as PEM SubjectPublicKeyInfo (a public key stays exportable even when the pair is not). */
export async function publicKeyPem(keyPair) {
  const spki = await crypto.subtle.exportKey("spki", keyPair.publicKey);
  const lines = toBase64(spki).match(/.{1,64}/g).join("\n");
  return `-----BEGIN PUBLIC KEY-----\n${lines}\n-----END PUBLIC KEY-----\n`;
}

/** Base64 of the raw r||s ECDSA signature over purpose + challenge ("citylogin-login:" by default, SPEC §4 login). */
export async function signChallenge(privateKey, challenge, purpose = LOGIN_PURPOSE) {
  return toBase64(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, utf8(purpose + challenge)));
}

/** A DPoP proof (RFC 9449, SPEC §12) by the device key for one request: `htu` is `url` without its
 * query and fragment, `ath` binds it to `accessToken` when one is sent, `nonce` only once the server
 * asked for one. WebCrypto's ECDSA signature is already raw r||s, the JWS form of ES256. */
export async function dpopProof(keyPair, { method, url, accessToken, nonce }) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keyPair.publicKey);
  const target = new URL(url);
  const claims = { jti: toBase64Url(crypto.getRandomValues(new Uint8Array(16))), htm: method,
                   htu: target.origin + target.pathname, iat: Math.floor(Date.now() / 1000) };
  if (accessToken) claims.ath = toBase64Url(await crypto.subtle.digest("SHA-256", utf8(accessToken)));
  if (nonce) claims.nonce = nonce;
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } };
  const input = `${toBase64Url(utf8(JSON.stringify(header)))}.${toBase64Url(utf8(JSON.stringify(claims)))}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keyPair.privateKey, utf8(input));
  return `${input}.${toBase64Url(signature)}`;
}

function utf8(text) {
  return new TextEncoder().encode(text);
}

function toBase64(buffer) {
  return btoa(String.fromCharCode(...new Uint8Array(buffer)));
}

function toBase64Url(buffer) {
  return toBase64(buffer).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "account" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Keeps the key pair with the 201 body of registration (`client_cert`, `device_id`, `uuid`, `fingerprint`). */
export function saveDevice(username, keyPair, issued) {
  const record = {
    account: accountKey(username), username, keyPair,
    clientCert: issued.client_cert, deviceId: issued.device_id, deviceName: issued.device_name,
    uuid: issued.uuid, fingerprint: issued.fingerprint, usedAt: Date.now(),
  };
  return withStore("readwrite", (store) => store.put(record));
}

/** Keeps the key pair with the certificate that POST /device/renew issued in place of the old one. */
export function replaceCertificate(record, renewed) {
  return withStore("readwrite", (store) => store.put({
    ...record, clientCert: renewed.client_cert, fingerprint: renewed.fingerprint }));
}

/** Forgets this browser's key for an account (after the account was deleted). */
export function forgetDevice(username) {
  return withStore("readwrite", (store) => store.delete(accountKey(username)));
}

export function findDevice(username) {
  return withStore("readonly", (store) => store.get(accountKey(username)));
}

/** Marks a record as the last one used, so the login form can offer its username. */
export async function markUsed(record) {
  await withStore("readwrite", (store) => store.put({ ...record, usedAt: Date.now() }));
}

/** Every account's record on this browser, the last used first. */
export async function devicesByUse() {
  const records = await withStore("readonly", (store) => store.getAll());
  return records.sort((a, b) => b.usedAt - a.usedAt);
}

export async function lastUsedDevice() {
  return (await devicesByUse())[0] || null;
}

/** The record of the account whose user_uuid has these 32 hex digits (a passkey's userHandle), or null. */
export async function deviceOfUser(hex) {
  const records = await withStore("readonly", (store) => store.getAll());
  return records.find((record) => record.uuid?.replace(/-/g, "").toLowerCase() === hex) || null;
}
