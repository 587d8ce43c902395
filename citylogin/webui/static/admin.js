// The operators' console at /admin/ (SPEC §15), built on the admin API. The person signs in on `/`; the
// web SDK resumes that session here, as the main page does: from this tab's sessionStorage after a
// reload, else the device's live session (resume(): a new tab, the browser reopened). The highest of the
// account's operator roles (GET /account) decides which buttons show; the server checks the role again
// on every call. Signed out, or without a role, the page says so and links back to `/`.

import { initAccounts } from "./admin_account.js";
import { RANKS } from "./admin_actions.js";
import { initApps, loadApps } from "./admin_apps.js";
import { initProviders, loadProviders } from "./admin_idps.js";
import { initMail, loadMail } from "./admin_mail.js";
import { initActionDialog } from "./admin_dialog.js";
import { readWindow } from "./admin_reauth.js";
import { failed, showGate } from "./admin_view.js";
import { authCall, citylogin } from "./api.js";
import { currentLocale, initialLocale, onLocaleChange, rememberChoice, rememberedChoice, setLocale,
  wantedLocale } from "./i18n.js";
import { $, tx } from "./ui.js";

/** The highest of `roles` (viewer < support < admin), or null for none. */
function highestRole(roles) {
  return roles.filter((role) => RANKS[role]).sort((a, b) => RANKS[b] - RANKS[a])[0] || null;
}

function selectTab(name) {
  for (const button of $("#console .tabs").querySelectorAll("button")) {
    if (button.dataset.tab === name) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  for (const panel of $("#console").querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  if (name === "apps") loadApps();
  if (name === "idps") loadProviders();
  if (name === "mail") loadMail();
}

/** The header's EN / 日本語: this page's language, in this browser, as on the main page. The account's
 * language (the language of the mail it is sent) is the operator's own Account page's to change. */
async function switchLanguage(tag) {
  if (tag === wantedLocale()) return;
  rememberChoice(tag);         // the last one picked, whichever catalogue arrives first (setLocale shows that one)
  await setLocale(tag);
}

function showLocale(tag) {
  for (const button of $("#language-switch").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.locale === tag));
  }
}

function wire() {
  $("#language-switch").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-locale]");
    if (button) switchLanguage(button.dataset.locale);
  });
  onLocaleChange(showLocale);
  showLocale(currentLocale());
  $("#console .tabs").addEventListener("click", (event) => {
    const tab = event.target.closest("button[data-tab]");
    if (tab) selectTab(tab.dataset.tab);
  });
  initActionDialog({ sessionEnded: () => showGate("signed-out") });
}

/** The operator behind this tab's session: {username, role}, or null after showing why there is none.
 * One device, one session, in any tab: without a session of its own this tab goes on with the live
 * session of this browser's device, as the main page does. */
async function operator() {
  let account;
  try {
    if (!citylogin.session && !(await citylogin.resume())) {
      showGate("signed-out");
      return null;
    }
    account = await authCall("GET", "/account");
  } catch (error) {
    failed($("#console-error"), error);
    return null;
  }
  if (!rememberedChoice() && account.locale !== currentLocale()) {   // the browser's choice first, as on the main page
    await setLocale(account.locale);
    rememberChoice(currentLocale());
  }
  const role = highestRole(account.roles || []);
  if (!role) showGate("no-role");
  return role && { username: account.username, role };
}

async function boot() {
  await setLocale(initialLocale()).catch(() => setLocale("en"));
  wire();
  const signedIn = await operator();
  if (!signedIn) return;
  $("#operator-name").textContent = signedIn.username;
  $("#operator-role").replaceChildren(tx("span", {}, `web.admin.role.${signedIn.role}`));
  await readWindow();                 // a destructive action asks for the password up front once it lapses
  initAccounts({ role: signedIn.role });
  if (signedIn.role === "admin") {
    $("#console .tabs button[data-tab=apps]").hidden = false;
    $("#console .tabs button[data-tab=idps]").hidden = false;
    $("#console .tabs button[data-tab=mail]").hidden = false;
    initApps();
    initProviders();
    initMail();
  }
  showGate("console");
  $("#search-value").focus();
}

boot();
