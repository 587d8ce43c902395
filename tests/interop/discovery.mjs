// npm `openid-client`'s discovery (unmodified) fetched at one address, as an app configured with that
// address runs it: it refuses an issuer other than the address it fetched. For the test that the
// README's address is the issuer `citylogin serve` announces (tests/citylogin/test_public_url.py).
//
//   node discovery.mjs URL    → {"issuer": ...} and exit 0, or {"error", "description"} and exit 1
import * as client from "openid-client";

const [url] = process.argv.slice(2);
try {
  const config = await client.discovery(new URL(url), "discovery-check", undefined, undefined,
    { execute: [client.allowInsecureRequests] });
  console.log(JSON.stringify({ issuer: config.serverMetadata().issuer }));
} catch (error) {
  console.log(JSON.stringify({ error: error.code || error.name, description: error.message }));
  process.exitCode = 1;
}
