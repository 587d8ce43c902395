// Types of the citylogin web SDK, /sdk/citylogin.js (docs/sdk.md).

/** A problem+json body (RFC 9457) as citylogin sends it; `code` is stable, `detail` is for people. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  /** Why a session ended, on 401 session_revoked. */
  reason?: string;
  [field: string]: unknown;
}

/** A non-2xx answer (`status`, the problem's `code`), or none at all (`status` 0, `code` "network_error"). */
export declare class CityloginError extends Error {
  constructor(status: number, problem: Problem);
  readonly name: "CityloginError";
  status: number;
  code: string;
  problem: Problem;
  /** True when this error ended the session (the onSessionEnded handlers have run). */
  sessionEnded: boolean;
  /** On `concurrent_login` from the SDK's own calls: the question, to answer with `confirm(displace)`. */
  concurrentLogin?: ConcurrentLogin<unknown>;
}

/** One device that holds a seat, as the 409 concurrent_login lists it. */
export interface ActiveDevice {
  /** What `confirm(displace)` names to sign this device out instead of the default ones. */
  session_id?: string;
  device_id: string;
  device_name: string;
  device_class?: "mobile" | "tablet" | "desktop" | "tv" | "other" | string;
  login_at: string;
  last_seen_at?: string;
  ip?: string;
  user_agent?: string | null;
  /** The apps signed in on it (they are signed out with it). */
  apps?: { client_id: string; name: string }[];
  /** True for the device asking (the phone approving a TV, when its own seat is one that could go). */
  current: boolean;
  /** True for the ones the eviction order picks (exactly `needed` of them). */
  default: boolean;
  [field: string]: unknown;
}

/** What waits for the person's answer: a login here, or a screen's (a TV's) sign-in approved here. */
export type InUseAction =
  | { kind: "login" }
  | { kind: "screen"; device_name: string; device_class: string; client_name?: string };

/** A login (or a screen's approval) refused with 409 concurrent_login: the account is at its device limit. */
export declare class ConcurrentLogin<Result = LoginResult> {
  constructor(problem: Problem, confirm?: (displace?: string[]) => Promise<Result>);
  /** The whole 409 body. */
  readonly problem: Problem;
  /** What the person is doing: a login here, or approving a screen's sign-in. */
  readonly action: InUseAction;
  /** How many of the listed devices must be signed out (at least 1). */
  readonly needed: number;
  /** Every device that could be signed out to make room: the default ones first, then the eviction order. */
  readonly activeDevices: ActiveDevice[];
  /** The session ids of the default ones. */
  readonly defaults: string[];
  /** Goes on: without `displace` the default devices are signed out; with session ids of `activeDevices`
   * (at least `needed`), exactly those. Rejects with `invalid_field` (field `displace`; ask again) or with
   * `concurrent_login` when a chosen device ended meanwhile: that error's `concurrentLogin` asks anew. */
  confirm(displace?: string[]): Promise<Result>;
}

/** The signed-in account on this browser. */
export interface LoginResult {
  username: string;
  deviceId: string;
  deviceName: string;
}

export interface Session extends LoginResult {
  /** The current access token (an EdDSA JWT), or null after a reload until the first call or refresh(). */
  accessToken: string | null;
  /** "DPoP" when the session is bound to this browser's device key (every call needs a proof by it:
   * use fetch() or authHeaders()), "Bearer" otherwise; null while accessToken is null. */
  tokenType: "DPoP" | "Bearer" | null;
}

export type DeviceClass = "desktop" | "mobile" | "tablet" | "other";

export interface CityloginOptions {
  /** Where citylogin answers, e.g. "https://login.example.com". Default: the origin this module came from. */
  baseUrl?: string;
  /** Where the refresh token is kept. Default: sessionStorage (per tab). */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  /** The language of problem `detail`s (Accept-Language) and of a new account: a tag or a function giving one. */
  locale?: string | (() => string);
}

export interface NewDevice {
  /** A name people recognise the device by; citylogin makes one up if absent. */
  deviceName?: string;
  /** Guessed from the user agent if absent. */
  deviceClass?: DeviceClass;
}

export interface RegisterOptions extends NewDevice {
  username: string;
  email: string;
  password: string;
  /** The account's language; default: the `locale` option. */
  locale?: string;
}

export interface PairOptions extends NewDevice {
  /** The pairing link or payload a signed-in device shows (its QR code). */
  qrCode: string;
  username: string;
  password: string;
}

/** The first device of an account that has none : its password and the code POST /device/enrol/code mailed. */
export interface EnrolOptions extends NewDevice {
  username: string;
  password: string;
  /** The 6 digits of the mail. */
  emailCode: string;
}

export interface RecoverOptions extends NewDevice {
  username: string;
  password: string;
  recoveryCode: string;
  /** Also unbind every other device of the account. */
  unbindOtherDevices?: boolean;
}

/** An app signed in on a session by OpenID Connect. */
export interface SignedInApp {
  client_id: string;
  name: string;
}

/** The live session this device holds already, which a login would replace. */
export interface LiveSession {
  sessionId: string;
  /** The apps signed in on it: a login here signs each of them out. */
  apps: SignedInApp[];
}

/** Asked before a login replaces this device's live session; anything but true cancels the login. */
export type ReplacingHandler = (live: LiveSession) => boolean | Promise<boolean>;

/** The session this tab resumed: the device's live session, opened by another tab. */
export interface ResumedSession extends LoginResult {
  apps: SignedInApp[];
}

export interface LoginOptions {
  username: string;
  password: string;
  /** Log the other device(s) out at once instead of resolving with a ConcurrentLogin. */
  confirm?: boolean;
  /** Asked first when this device has a live session; unless it says true, login resolves with null. */
  replacing?: ReplacingHandler;
}

export interface PasskeyLoginOptions {
  /** Offer only this account's passkeys; without it the person picks any passkey of theirs, and its
   * account picks this browser's device key. */
  username?: string;
  /** Log the other device(s) out at once instead of resolving with a ConcurrentLogin. */
  confirm?: boolean;
  /** As LoginOptions.replacing. */
  replacing?: ReplacingHandler;
}

/** A sign-in with an account from elsewhere: the provider's answer is the ticket cookie this
 * browser holds; `username` names the account whose device key here signs. */
export interface TicketLoginOptions {
  username: string;
  /** As LoginOptions.confirm. */
  confirm?: boolean;
  /** As LoginOptions.replacing. */
  replacing?: ReplacingHandler;
}

/** A new account for the ticket's identity: the person picks the username; there is no password. */
export interface TicketSignUpOptions {
  username: string;
  deviceName?: string;
  deviceClass?: string;
  locale?: string;
}

/** A further device of the account the ticket's identity is linked to (`username`, as GET /federation/ticket
 * names it), in place of the password. */
export interface TicketPairOptions extends NewDevice {
  /** The pairing link or payload one of the account's devices shows (its QR code). */
  qrCode: string;
  username: string;
}

/** The first device of the account the ticket's identity is linked to, which has none yet. */
export interface TicketEnrolOptions extends NewDevice {
  username: string;
}

/** A new device of the account the ticket's identity is linked to, whose devices are all lost. */
export interface TicketRecoverOptions extends NewDevice {
  username: string;
  recoveryCode: string;
  /** Also unbind every other device of the account. */
  unbindOtherDevices?: boolean;
}

/** PublicKeyCredential.toJSON() of an assertion (navigator.credentials.get). */
export type PasskeyAssertion = Record<string, unknown>;

/** What an account call takes to confirm it is the person: the password asked again, a passkey, or (an account
 * with no password) the reauth_token of a fresh sign-in with its provider (POST /federation/reauth). */
export type Reauthentication =
  | { password: string; passkey?: never; reauth_token?: never }
  | { passkey: PasskeyAssertion; password?: never; reauth_token?: never }
  | { reauth_token: string; password?: never; passkey?: never };

/** A passkey of the account (GET /account/passkeys). */
export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  /** Synced or backed up by its provider (a password manager), so it survives the loss of one device. */
  backed_up: boolean;
  [field: string]: unknown;
}

/** The 201 body of registration, pairing or recovery. */
export interface IssuedDevice {
  uuid: string;
  device_id: string;
  device_name: string;
  client_cert: string;
  fingerprint: string;
  recovery_codes?: string[];
  [field: string]: unknown;
}

/** The 201 body of POST /device/renew. */
export interface RenewedCertificate {
  client_cert: string;
  fingerprint: string;
  [field: string]: unknown;
}

export interface RequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  /** Send the access token, with a DPoP proof for a bound session (default true). */
  auth?: boolean;
}

/** A TV's code approved (POST /oidc/device/approve): the screen's new session, and the devices it displaced. */
export interface DeviceApproval {
  status: "approved";
  session_id: string;
  device_name: string;
  evicted: { device_id: string; device_name: string }[];
  [field: string]: unknown;
}

/** What the server said of a session's end; every member is null where it said nothing. */
export interface SessionEnding {
  /** A revocation reason (displaced, remote_logout, logged_out, device_unbound, idle_timeout, max_lifetime,
   * refresh_reuse, password_changed, password_reset, account_deleted, admin). */
  reason: string | null;
  /** The device whose action ended it (a logout, a login that displaced it, a removal). */
  by_device: string | null;
  /** The app (client_id) whose own logout (RP-initiated) ended it, and that app's name. */
  by_app: string | null;
  by_app_name: string | null;
  /** An operator's action: "locked" (reason admin; the account cannot log in until unlocked),
   * "sessions_ended" (reason admin) or "device_removed" (reason device_unbound). */
  admin_action: string | null;
}

/** Why a session ended: `reason` as before, and the whole `ending`. */
export type SessionEndedHandler = (reason: string | null, ending: SessionEnding) => void;

export declare class Citylogin {
  constructor(options?: CityloginOptions);
  readonly baseUrl: string;
  /** The signed-in session, or null. */
  readonly session: Session | null;
  register(options: RegisterOptions): Promise<IssuedDevice>;
  pairWithToken(options: PairOptions): Promise<IssuedDevice>;
  recover(options: RecoverOptions): Promise<IssuedDevice>;
  /** The first device of an account that has none yet, e.g. one an import brought (POST /device/enrol, after POST
   * /device/enrol/code mailed the code); sign in next with login(). 409 device_exists: pair or recover instead. */
  enrolWithCode(options: EnrolOptions): Promise<IssuedDevice>;
  login(options: LoginOptions & { confirm: true }): Promise<LoginResult | null>;
  login(options: LoginOptions): Promise<LoginResult | ConcurrentLogin | null>;
  /** A passkey in place of the password, with this browser's device key as login(). Errors of the
   * browser's prompt have status 0 and code passkey_cancelled, passkey_exists, passkey_failed, or
   * passkeys_unsupported where the browser lacks WebAuthn. */
  loginWithPasskey(options: PasskeyLoginOptions & { confirm: true }): Promise<LoginResult | null>;
  loginWithPasskey(options?: PasskeyLoginOptions): Promise<LoginResult | ConcurrentLogin | null>;
  /** An account from elsewhere (POST /federation/login): the ticket in place of the password, this browser's
   * device key for `username` as login(); `no_device_key` when there is none here. */
  loginWithTicket(options: TicketLoginOptions & { confirm: true }): Promise<LoginResult | null>;
  loginWithTicket(options: TicketLoginOptions): Promise<LoginResult | ConcurrentLogin | null>;
  /** A new account for the ticket's identity, this browser its first device (POST /federation/signup). */
  signUpWithTicket(options: TicketSignUpOptions): Promise<IssuedDevice>;
  /** This browser as a further device of the account the ticket's identity is linked to, with a pairing code
   * (POST /federation/pair); sign in next with loginWithTicket(). */
  pairWithTicket(options: TicketPairOptions): Promise<IssuedDevice>;
  /** A new device of that account with a recovery code (POST /federation/recover); then loginWithTicket(). */
  recoverWithTicket(options: TicketRecoverOptions): Promise<IssuedDevice>;
  /** The first device of that account when it has none yet (POST /federation/enrol); then loginWithTicket(). */
  enrolWithTicket(options: TicketEnrolOptions): Promise<IssuedDevice>;
  /** Links the ticket's identity to the account its password and this browser's device key prove, and signs
   * in as login() (POST /federation/link). */
  linkWithTicket(options: LoginOptions & { confirm: true }): Promise<LoginResult | null>;
  linkWithTicket(options: LoginOptions): Promise<LoginResult | ConcurrentLogin | null>;
  /** This browser's device's live session (opened in another tab) goes on in this tab, without a login: an
   * access token bound to the device key and no refresh token (POST /session/resume; resumed again when it
   * runs out). `null` when no device here has a live session. */
  resume(): Promise<ResumedSession | null>;
  /** An assertion by a passkey of the signed-in account, taken once in place of the password by an account call. */
  confirmWithPasskey(): Promise<{ passkey: PasskeyAssertion }>;
  passkeys(): Promise<Passkey[]>;
  /** Makes a passkey (the browser asks the person) and keeps it on the account. */
  addPasskey(options: Reauthentication & { name?: string }): Promise<{ id: string; name: string }>;
  renamePasskey(id: string, name: string): Promise<{ id: string; name: string }>;
  removePasskey(id: string, reauthentication: Reauthentication): Promise<void>;
  logout(): Promise<void>;
  logoutAll(): Promise<void>;
  deleteAccount(options: Reauthentication): Promise<void>;
  refresh(): Promise<void>;
  onSessionEnded(handler: SessionEndedHandler): () => void;
  /** window.fetch with the access token: `Authorization: DPoP <token>` and a fresh `DPoP` proof for this
   * request when the session is bound (a 401 use_dpop_nonce is retried once with the server's nonce),
   * else `Authorization: Bearer`. A path is resolved against baseUrl, a full URL is used as it is. */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  /** Authorization (and, for a bound session, a single-use DPoP proof) for one request `method url`
   * made with another transport than fetch(); header names in lower case. */
  authHeaders(method: string, url: string | URL): Promise<Record<string, string>>;
  /** A JSON call to citylogin: the answer's JSON (null for 204), or a CityloginError. */
  request<T = any>(method: string, path: string, options?: RequestOptions): Promise<T>;
  renewCertificate(): Promise<RenewedCertificate>;
  /** Single sign-on for an app's waiting OpenID Connect request (`request`, the id of `#oidc=`): a device key
   * of this browser whose device has a live session finishes it. `null` when none has (or the app asks for a
   * fresh sign-in); rejects with `consent_required` until called with `consent: true`. */
  signInForApp(request: string, options?: { consent?: boolean }):
    Promise<{ redirect_to: string; form_post: string | null } | null>;
  /** A TV's or command line's code (RFC 8628's user code) approved by single sign-on: a device key of this
   * browser whose device has a live session approves it as that account; the screen takes a seat of its own
   * named `deviceName`. `null` when no device here has a live session (sign in first). Rejects with
   * `concurrent_login` (its `concurrentLogin` asks the person: `confirm(displace)` approves again with their
   * choice; or call again with `force: true`, and `displace` to name the devices that go),
   * `invalid_field` (field `displace`), `concurrent_login_rejected`, `invalid_user_code` (wrong, used or
   * expired) or `rate_limited`. */
  approveDeviceWithDevice(userCode: string, options: { deviceName: string; force?: boolean; displace?: string[] }):
    Promise<DeviceApproval | null>;
  /** An app's logout request (`request`, the id of `#oidc-logout=`): a device key of this browser proves its
   * device's live session. It ends when it is the session the app named, or with `confirm: true` (the person
   * said yes); `null` when no device here has a live session; rejects with `logout_confirmation_required` when
   * one has a session the app did not name. `redirect_to`: back to the app, or null to stay. */
  signOutForApp(request: string, options?: { confirm?: boolean }): Promise<{ redirect_to: string | null } | null>;
  lastUsedDevice(): Promise<LoginResult | null>;
  forgetDevice(username: string): Promise<void>;
}
