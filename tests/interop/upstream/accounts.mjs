// Who signs in at the upstream, per mode: the account a test named with POST /__test/next-login (or the
// mode's default person), turned into the claims that provider gives. The ID token carries what the
// granted scopes name (conformIdTokenClaims: false), as Google's and Apple's ID tokens do.
import { randomBytes } from 'node:crypto';

// The claims each scope gives, as each provider documents them. Google's `hd` (hosted domain) comes with
// the sign-in itself, whatever the scopes; Apple gives no name in the ID token, ever.
export const CLAIMS = {
  google: {
    openid: ['sub', 'hd'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'picture', 'locale'],
  },
  apple: { openid: ['sub'], email: ['email', 'email_verified', 'is_private_email'] },
  company: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  },
};

// Scopes beyond those CLAIMS names: Apple's `name` asks for the `user` form field, not a claim.
export const SCOPES = { google: [], apple: ['name'], company: [] };

// The person who signs in when no test said who.
const DEFAULTS = {
  google: {
    sub: '109876543210987654321', email: 'ada.lovelace@gmail.com', email_verified: true,
    name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace',
    picture: 'https://lh3.googleusercontent.com/a/ada-lovelace',
  },
  apple: { sub: '001234.5f3c2b1a9d8e4f7a6b5c4d3e2f1a0b9c.1234', given_name: 'Ada', family_name: 'Lovelace' },
  company: {
    sub: 'f5d0c3a2-7b1e-4c9d-8a6f-2e3b4c5d6e7f', email: 'ada@example.com', email_verified: true,
    name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', preferred_username: 'ada',
  },
};

// The next sign-in's person: the one a test set (once), else the mode's default.
export function takeNextPerson(state) {
  const person = state.nextLogin ?? DEFAULTS[state.mode];
  state.nextLogin = null;
  return person;
}

// Remembers the person's claims under their sub (findAccount reads them at the token endpoint) and
// answers the Apple `user` form field's value for them.
export function remember(state, person) {
  const claims = state.mode === 'apple' ? appleClaims(state, person) : { ...person };
  state.accounts.set(person.sub, claims);
  return {
    sub: person.sub,
    user: {
      name: { firstName: person.given_name ?? '', lastName: person.family_name ?? '' },
      email: claims.email,
    },
  };
}

// Apple's answer: a private-relay address unless the test gave one, and its booleans as strings.
function appleClaims(state, person) {
  if (!person.email && !state.relays.has(person.sub)) {
    state.relays.set(person.sub, `${randomBytes(5).toString('hex')}@privaterelay.appleid.com`);
  }
  const email = person.email ?? state.relays.get(person.sub);
  const claims = { sub: person.sub, email, email_verified: String(person.email_verified ?? true) };
  if (email.endsWith('@privaterelay.appleid.com')) {
    claims.is_private_email = 'true';
  }
  return claims;
}

export function findAccount(state, sub) {
  const claims = state.accounts.get(sub);
  return claims && { accountId: sub, claims: async () => claims };
}
