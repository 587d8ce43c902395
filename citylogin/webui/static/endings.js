// What the login screen's banner says when a session ended: what happened, then what to do, each said once;
// who ended it where the server says so (an operator, this device's own other tab, an app's logout), else why.

import { removedThisDevice } from "./devices.js";

// Why a session ended (SPEC §4 revocation reasons): what happened, then what to do, each said once.
const RELOGIN = "web.banner.log_in_again";
const ENDED = {
  displaced: ["web.banner.displaced", "web.banner.displaced_next"],
  remote_logout: ["web.banner.remote_logout", RELOGIN],
  logged_out: ["web.banner.remote_logout", RELOGIN],
  device_unbound: ["web.banner.device_removed", "web.banner.device_removed_next"],
  idle_timeout: ["web.banner.idle_timeout", RELOGIN],
  max_lifetime: ["web.banner.max_lifetime", RELOGIN],
  refresh_reuse: ["web.banner.refresh_reuse", "web.banner.refresh_reuse_next"],
  password_changed: ["web.banner.password_changed", "web.banner.password_next"],
  password_reset: ["web.banner.password_reset", "web.banner.password_next"],
  account_deleted: ["web.banner.account_deleted", null],
  admin: ["web.banner.admin", RELOGIN],
};
export const REMOVED_HERE = ["web.banner.device_removed_here", "web.banner.device_removed_next"];
// What an operator did, when the server says (SPEC §4 admin_action): a locked account cannot log in again.
const BY_OPERATOR = {
  locked: ["web.banner.admin_locked", "web.banner.admin_locked_next"],
  sessions_ended: ["web.banner.admin_sessions_ended", RELOGIN],
  device_removed: ["web.banner.admin_device_removed", "web.banner.device_removed_next"],
};

/** The banner of an ending ({reason, by_device, by_app, by_app_name, admin_action}, the SDK's): who ended
 * it where the server says so, else why. [title, text, params]. */
export function endingBanner(ending, account) {
  const { reason } = ending;
  const here = Boolean(ending.by_device) && ending.by_device === account?.deviceId;
  if (BY_OPERATOR[ending.admin_action]) return BY_OPERATOR[ending.admin_action];
  if (reason === "logged_out" && here && ending.by_app) {
    return ["web.banner.app_signed_out", RELOGIN, { app: ending.by_app_name || ending.by_app }];
  }
  // This device's own session, ended in another of its tabs (a logout there, or a login again).
  if (reason === "logged_out" && here) return ["web.banner.ended_here", "web.banner.ended_here_next"];
  if (reason === "device_unbound" && removedThisDevice()) return REMOVED_HERE;
  return ENDED[reason] || ["web.banner.ended", RELOGIN];
}
