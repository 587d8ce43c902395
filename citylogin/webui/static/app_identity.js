// What an app registered to be known by (RFC 7591: logo_uri, client_uri, policy_uri, tos_uri), on the
// sign-in banner and the consent dialog (SPEC §14): its logo, and links to its site, privacy policy and
// terms. The addresses were checked at registration (absolute http(s) URLs); they are checked again here
// before they become a src or an href. A logo that does not load, or whose origin the page's
// Content-Security-Policy does not list (apps.registry), stays hidden: the app's name is always shown.

import { tx } from "./ui.js";

const LINKS = [["client_uri", "web.oidc.app_site"], ["policy_uri", "web.oidc.app_policy"],
  ["tos_uri", "web.oidc.app_terms"]];

/** `value` as an absolute http(s) address, or null. */
function webAddress(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** The app's logo in `img` (shown once it has loaded), or none. */
export function showLogo(img, interaction) {
  img.hidden = true;
  const src = interaction.logo_uri ? webAddress(interaction.logo_uri) : null;
  if (!src) {
    img.removeAttribute("src");
    return;
  }
  img.referrerPolicy = "no-referrer";
  img.onload = () => { img.hidden = false; };
  img.onerror = () => { img.hidden = true; };
  img.src = src;
}

/** Links to the app's site, privacy policy and terms in `box`, each opening a new tab; the box is hidden
 * when the app registered none. */
export function showLinks(box, interaction) {
  const links = LINKS.map(([member, key]) => [interaction[member] ? webAddress(interaction[member]) : null, key])
    .filter(([href]) => href)
    .map(([href, key]) => tx("a", { href, target: "_blank", rel: "noopener noreferrer" }, key,
      { app: interaction.client_name }));
  box.replaceChildren(...links.flatMap((link, i) => (i ? [" · ", link] : [link])));
  box.hidden = links.length === 0;
}

/** Says, right after `anchor` (the app's name), that the app registered itself, unless an operator verified it
 * (SPEC §14: a look-alike of the operator's own app must not pass for it); the note is made once. */
export function showSelfRegistered(anchor, interaction) {
  const id = `${anchor.id}-self-registered`;
  let note = document.getElementById(id);
  if (!note) {
    note = tx("span", { id, className: "self-registered" }, "web.oidc.registered_itself");
    anchor.after(note);
  }
  note.hidden = !interaction.registered_itself;
}
