// The ID token rewrites of POST /__test/tamper: each one a way an answer can be wrong that a careful
// relying party refuses (OIDC Core §3.1.3.7). Those that must look valid otherwise are signed again with
// the provider's own signing key, so only the one wrong thing is wrong.
import { createPublicKey } from 'node:crypto';

import { SignJWT, base64url, decodeJwt, decodeProtectedHeader, importJWK } from 'jose';

const now = () => Math.floor(Date.now() / 1000);

// Claims rewrites, signed again with the signing key.
const CLAIMS_REWRITES = {
  wrong_aud: (claims) => ({ ...claims, aud: 'someone-elses-app' }),
  wrong_iss: (claims) => ({ ...claims, iss: 'https://mix-up.example.invalid' }),
  expired: (claims) => ({ ...claims, iat: now() - 7200, exp: now() - 3600 }),
  wrong_nonce: (claims) => ({ ...claims, nonce: 'not-the-nonce-that-was-sent' }),
  no_azp_multi_aud: ({ azp, ...claims }) => ({ ...claims, aud: [claims.aud, 'another-app'].flat() }),
};

// Rewrites of the signature or its algorithm.
const SIGNATURE_REWRITES = {
  bad_signature: async (token) => {
    const [header, payload, signature] = token.split('.');
    const bytes = base64url.decode(signature);
    bytes[0] ^= 0xff;
    return [header, payload, base64url.encode(bytes)].join('.');
  },
  alg_none: async (token) => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    return `${header}.${token.split('.')[1]}.`;
  },
  // The old confusion: HMAC keyed with the RSA public key's PEM, which anyone can fetch from the JWKS.
  hs256_with_public_key: async (token, signingKey) => {
    const { kid } = decodeProtectedHeader(token);
    const pem = createPublicKey({ key: signingKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    return new SignJWT(decodeJwt(token)).setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid })
      .sign(new TextEncoder().encode(pem));
  },
};

export const TAMPER_KINDS = [...Object.keys(CLAIMS_REWRITES), ...Object.keys(SIGNATURE_REWRITES)];

// The ID token `token`, rewritten the `kind` way; signingKey is the private JWK that signed it.
export async function tamper(kind, token, signingKey) {
  if (kind in SIGNATURE_REWRITES) {
    return SIGNATURE_REWRITES[kind](token, signingKey);
  }
  const header = decodeProtectedHeader(token);
  const key = await importJWK(signingKey, header.alg);
  return new SignJWT(CLAIMS_REWRITES[kind](decodeJwt(token))).setProtectedHeader(header).sign(key);
}
