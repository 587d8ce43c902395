// The console's initial access tokens (SPEC §14, §15; role admin): the tokens apps present to register
// themselves at POST /oidc/register (RFC 7591). One is made with its expiry and number of registrations (the
// token shown once, here, and never again: only its digest is kept), listed by id with its expiry and uses
// left, and revoked; each confirmed with a reason in the dialog.

import { authCall } from "./api.js";
import { confirmAction } from "./admin_dialog.js";
import { cell, failed, sayDone } from "./admin_view.js";
import { onLocaleChange, setPlainText, setText } from "./i18n.js";
import { latestOnly } from "./latest.js";
import { $, clearMessage, el, timeEl, tx } from "./ui.js";

let tokens = [];
const reads = latestOnly({ busy: $("#tokens-section") });

export function initRegistrationTokens() {
  $("#token-form").addEventListener("submit", makeToken);
  $("#token-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-token-id]");
    if (button) revokeToken(button.dataset.tokenId);
  });
  onLocaleChange(() => drawTokens());
}

export async function loadRegistrationTokens() {
  clearMessage($("#tokens-section > .error"));
  await reads.read(() => authCall("GET", "/admin/registration-tokens"), {
    draw: (answer) => {
      tokens = answer.tokens;
      drawTokens();
    },
    failed: (error) => failed($("#tokens-section > .error"), error),
  });
}

function drawTokens() {
  $("#token-rows").replaceChildren(...tokens.map(tokenRow));
  $("#tokens-none").hidden = tokens.length > 0;
}

function tokenRow(token) {
  const revoke = tx("button", { type: "button", className: "danger small", dataset: { tokenId: token.id } },
    "web.admin.action.token_revoke");
  return el("tr", { dataset: { tokenId: token.id } },
    cell("web.admin.col_token_id", el("code", {}, token.id)),
    cell("web.admin.col_expires", timeEl(token.expires_at)),
    cell("web.admin.col_uses_left", tx("span", {}, "web.admin.uses_left", { left: token.uses_left, uses: token.uses })),
    cell("web.admin.col_created_by", token.created_by || ""),
    cell("web.admin.col_actions", el("span", { className: "actions" }, revoke)));
}

async function makeToken(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearMessage($(".error", form));
  const fields = { expires_in: Number(form.expires_in.value), uses: Number(form.uses.value) };
  const made = await confirmAction({ title: "web.admin.action.token_add", message: "web.admin.action.token_add_message",
    params: { count: fields.uses }, danger: false,
    send: (body) => authCall("POST", "/admin/registration-tokens", { ...fields, ...body }) });
  if (!made) return;
  form.reset();
  clearMessage($("#tokens-done"));
  showToken(made);
  await loadRegistrationTokens();
}

async function revokeToken(id) {
  const revoked = await confirmAction({ title: "web.admin.action.token_revoke",
    message: "web.admin.action.token_revoke_message", params: { token: id },
    send: (body) => authCall("DELETE", `/admin/registration-tokens/${encodeURIComponent(id)}`, body) });
  if (!revoked) return;
  $("#token-made").hidden = true;
  sayDone($("#tokens-done"), "token_revoke", id);
  await loadRegistrationTokens();
}

/** The token, shown this once: the server keeps only its digest. */
function showToken(made) {
  const box = $("#token-made");
  setText($("#token-made-title"), "web.admin.token_for", { token: made.id });
  setPlainText($("#token-made-value"), made.token);
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
  box.focus();
}
