// The account flows, without any DOM: register, pair this browser, recover, log in, confirm, log out.
// Each successful login resolves with the signed-in account {username, deviceId, deviceName}.

import { ApiError, authCall, call, clearSession, startSession } from "./api.js";
import { currentLocale } from "./i18n.js";
import { createDeviceKey, findDevice, markUsed, publicKeyPem, saveDevice, signChallenge } from "./keystore.js";
import { renewInBackground } from "./renewal.js";
import { guessDeviceClass } from "./ui.js";

/** A new account with this browser as its first device (SPEC §4 POST /registration/); the UI's
 * language becomes the account's, so its very first messages are in it. */
export async function register({ username, email, password, deviceName }) {
  const keyPair = await createDeviceKey();
  const issued = await call("POST", "/registration/", {
    username, email, password, device_name: deviceName || undefined, device_class: guessDeviceClass(),
    public_key: await publicKeyPem(keyPair), locale: currentLocale(),
  });
  await saveDevice(username, keyPair, issued);
  return issued;
}

/** This browser as a further device, with a pairing payload from a signed-in device (POST /device/register). */
export async function pair({ qrCode, username, password, deviceName }) {
  const keyPair = await createDeviceKey();
  const issued = await call("POST", "/device/register", {
    qr_code: qrCode, username, password, device_name: deviceName || undefined, device_class: guessDeviceClass(),
    public_key: await publicKeyPem(keyPair),
  });
  await saveDevice(username, keyPair, issued);
  return issued;
}

/** A new key for an account whose devices are all lost, with one recovery code (POST /device/recover). */
export async function recover({ username, password, recoveryCode, deviceName, unbindOtherDevices }) {
  const keyPair = await createDeviceKey();
  const issued = await call("POST", "/device/recover", {
    username, password, recovery_code: recoveryCode, device_name: deviceName || undefined,
    device_class: guessDeviceClass(),
    unbind_other_devices: unbindOtherDevices, public_key: await publicKeyPem(keyPair),
  });
  await saveDevice(username, keyPair, issued);
  return issued;
}

/** Password plus proof of possession. Throws ApiError; code `concurrent_login` carries the 409 body. */
export async function login({ username, password }) {
  const device = await findDevice(username);
  if (!device) {
    throw new ApiError(0, { code: "no_device_key", username });
  }
  const { challenge } = await call("POST", "/login/challenge", {});
  const signature = await signChallenge(device.keyPair.privateKey, challenge);
  const tokens = await call("POST", "/login/", {
    username, password, client_cert: device.clientCert, challenge, signature,
  });
  return begin(tokens, device);
}

/** Continues a login refused with 409 concurrent_login; the other device is logged out (SPEC §5). */
export async function confirmLogin({ username, confirmToken }) {
  const device = await findDevice(username);
  return begin(await call("POST", "/login/confirm", { confirm_token: confirmToken }), device);
}

async function begin(tokens, device) {
  startSession(tokens);
  await markUsed(device);
  if (tokens.renew_certificate) renewInBackground(await findDevice(device.username));
  return { username: device.username, deviceId: tokens.device_id, deviceName: device.deviceName };
}

/** Ends this session on the server, then on the client (even if the server call fails). */
export async function logout() {
  try {
    await authCall("POST", "/session/logout");
  } finally {
    clearSession();
  }
}
