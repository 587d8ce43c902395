// The recovery codes, shown once (SPEC §4: after registration and after "make new codes"),
// with copy and print; the list leaves the page when the person says they are saved.

import { $, el, modal, say } from "./ui.js";

export function initCodes() {
  const dialog = $("#codes-dialog");
  // Escape must not lose codes that are never shown again: only "I have saved them" closes.
  dialog.addEventListener("cancel", (event) => event.preventDefault());
  $("#codes-copy").addEventListener("click", copyCodes);
  $("#codes-print").addEventListener("click", () => window.print());
}

/** Shows the codes until the person confirms they saved them (none: nothing to show). */
export async function showRecoveryCodes(codes) {
  if (!codes.length) return;
  $("#codes-list").replaceChildren(...codes.map((code) => el("li", {}, el("code", {}, code))));
  $("#codes-copied").hidden = true;
  await modal($("#codes-dialog"));
  $("#codes-list").replaceChildren();
}

async function copyCodes() {
  const note = $("#codes-copied");
  const text = [...$("#codes-list").querySelectorAll("code")].map((code) => code.textContent).join("\n");
  try {
    await navigator.clipboard.writeText(text);
    say(note, "web.codes.copied");
  } catch {
    say(note, "web.codes.copy_refused");
  }
}
