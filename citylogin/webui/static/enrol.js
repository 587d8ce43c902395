// The first device of an account that has none yet (SPEC §17): a person an import brought from Keycloak, Auth0 or
// the service's own database has a username and a password here but no device. "First time on citylogin? We'll
// e-mail you a code" leads them: the username (POST /device/enrol/code, whose answer is the same whatever the
// account: a code goes to its address only if it can be set up this way), then the code, the password and this
// browser's name (POST /device/enrol with this browser's new key, kept as after registering), then the sign-in as
// after registering. An account that has a device already is pointed to pairing and the recovery code. Loaded when
// asked for: the login screen's cold load carries none of it. The steps are drawn as federation_steps.js draws its.

import { call, citylogin } from "./api.js";
import { draw, field } from "./federation_steps.js";
import { $, busy, el, guessDeviceName, tx } from "./ui.js";

/** Opens the panel on its first step, `username` (the login form's) filled in. `app`: the screen's
 * {showPanel(name), logIn(username, password, options)} (app.js). */
export function startEnrol(app, username = "") {
  const form = panel();
  app.showPanel("enrol");
  drawUsername(form, app, username);
}

/** The panel the steps draw in, made once, beside the pair form. */
function panel() {
  const made = $("#enrol-form");
  if (made) return made;
  const form = el("form", { id: "enrol-form", className: "card", noValidate: true, hidden: true,
    dataset: { panel: "enrol" } });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    form.onStep?.(event);
  });
  $("#pair-form").after(form);
  return form;
}

function drawUsername(form, app, username) {
  draw(form, () => mailCode(form, app), { title: "web.enrol.title", submit: "web.enrol.send",
    body: [tx("p", { className: "muted" }, "web.enrol.intro"),
      ...field({ id: "enrol-username", name: "username", label: "web.common.username", value: username,
        autocomplete: "username" })] });
}

/** POST /device/enrol/code: 202 for any username, so the next step says the code comes only if it can. */
async function mailCode(form, app) {
  const username = form.username.value.trim();
  const sent = await busy(form, () => call("POST", "/device/enrol/code", { username }).then(() => true));
  if (sent) drawCode(form, app, username);
}

function drawCode(form, app, username) {
  const again = tx("button", { type: "button", className: "link" }, "web.enrol.again");
  again.addEventListener("click", () => drawUsername(form, app, username));
  const sent = tx("p", { id: "enrol-sent", className: "muted" }, "web.enrol.sent", { username });
  sent.setAttribute("role", "status");
  // Pairing and the recovery code, shown when the account turns out to have a device (409 device_exists)
  const otherWays = el("div", { id: "enrol-other-ways", className: "more-links", hidden: true },
    tx("button", { type: "button", className: "link", dataset: { show: "pair" } }, "web.auth.tab_pair"),
    tx("button", { type: "button", className: "link", dataset: { show: "recover" } }, "web.login.lost_devices"));
  // An address typed in the username's place (a source whose usernames were addresses): the mail says the
  // account's username, which the enrol and every later sign-in take; asked for here.
  const named = username.includes("@") ? field({ id: "enrol-named", name: "username",
    label: "web.enrol.username_in_mail", autocomplete: "username" }) : [];
  draw(form, () => enrolAndSignIn(form, app, form.username?.value.trim() || username, otherWays), {
    title: "web.enrol.title", submit: "web.enrol.submit", links: [again],
    body: [sent, ...named,
      ...field({ id: "enrol-code", name: "email_code", label: "web.enrol.code", inputMode: "numeric",
        autocomplete: "one-time-code", maxLength: 6, spellcheck: false }),
      ...field({ id: "enrol-password", name: "password", label: "web.common.password", type: "password",
        autocomplete: "current-password" }),
      ...field({ id: "enrol-device", name: "device_name", label: "web.common.device_name",
        value: guessDeviceName(), maxLength: 64 })] });
  $(".error", form).after(otherWays);
}

/** POST /device/enrol with this browser's new key, then the sign-in with it as after registering. */
async function enrolAndSignIn(form, app, username, otherWays) {
  const password = form.password.value;
  otherWays.hidden = true;
  const issued = await busy(form, () => citylogin.enrolWithCode({ username, password,
    emailCode: form.email_code.value.trim(), deviceName: form.device_name.value.trim() || undefined })
    .catch((error) => {
      otherWays.hidden = error.code !== "device_exists";
      throw error;
    }));
  if (issued) await app.logIn(username, password, { codes: issued.recovery_codes || [] });
}
