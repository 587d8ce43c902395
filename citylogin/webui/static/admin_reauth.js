// The operator's re-authentication window (SPEC §15), as the server tells it at GET /admin/me: until
// it lapses a destructive action goes without a password; after, the console asks for one up front, and
// a success that carried one renews the window on the server, which is read again. Kept as a deadline
// on this page's monotonic clock, so a device's wrong wall clock changes nothing. The server stays the
// judge: a console that guessed wrong still meets 401 reauthentication_required and asks then.

import { authCall } from "./api.js";
import { latestOnly } from "./latest.js";

// A request sent just before the window ends may arrive after it: ask a little early instead.
const MARGIN_MS = 5000;

let deadline = 0;          // performance.now() at which the window lapses; 0: lapsed (or not known yet)
let seconds = 300;         // CITYLOGIN_ADMIN_REAUTH_SECONDS, as the server says
const reads = latestOnly();   // an answer older than the latest read (or than a lapse()) says nothing

/** Learns the window from GET /admin/me's answer `me`; an app's credential has none (never lapses). */
export function learnWindow(me) {
  seconds = me.reauth_seconds ?? seconds;
  const left = me.reauth_seconds_left;
  deadline = left === null || left === undefined ? Infinity : performance.now() + left * 1000;
}

/** Reads the window again (after a re-authentication renewed it); a failure leaves it lapsed. */
export async function readWindow() {
  await reads.read(() => authCall("GET", "/admin/me"), {
    draw: learnWindow,
    failed: () => { deadline = 0; },   // the server asks when it must; asking first is the safe side
  });
}

export function windowLapsed() {
  return performance.now() >= deadline - MARGIN_MS;
}

/** The server answered 401 reauthentication_required: whatever this page believed, it has lapsed. */
export function lapse() {
  reads.drawn();
  deadline = 0;
}

/** The window's length in whole minutes, for the text that explains the question. */
export function windowMinutes() {
  return Math.max(1, Math.round(seconds / 60));
}
