// The brand marks on the "Continue with …" buttons (SPEC §16): Google's "G", Apple's apple and Microsoft's four
// squares, drawn simply, and a key for any other provider. Built node by node from fixed shapes (no markup
// parsed, nothing from the server drawn), so the page's policy and the safe-SVG rules have nothing to check.

const SVG = "http://www.w3.org/2000/svg";

const MARKS = {
  google: [
    ["path", { fill: "#4285F4", d: "M22.56 12.25c0-.78-.07-1.53-.2-2.25H12v4.26h5.92a5.06 5.06 0 0 1-2.2 3.32v2.76h3.56c2.08-1.92 3.28-4.74 3.28-8.09z" }],
    ["path", { fill: "#34A853", d: "M12 23c2.97 0 5.46-.98 7.28-2.66l-3.56-2.76c-.99.66-2.25 1.06-3.72 1.06-2.86 0-5.29-1.93-6.16-4.53H2.18v2.84A11 11 0 0 0 12 23z" }],
    ["path", { fill: "#FBBC05", d: "M5.84 14.11A6.6 6.6 0 0 1 5.49 12c0-.73.13-1.44.35-2.11V7.05H2.18a11 11 0 0 0 0 9.9l3.66-2.84z" }],
    ["path", { fill: "#EA4335", d: "M12 5.38c1.62 0 3.06.56 4.21 1.64l3.15-3.15A10.6 10.6 0 0 0 12 1 11 11 0 0 0 2.18 7.05l3.66 2.84C6.71 7.31 9.14 5.38 12 5.38z" }],
  ],
  apple: [
    ["path", { fill: "currentColor", d: "M16.37 12.6c-.02-2.3 1.88-3.4 1.96-3.46-1.07-1.56-2.73-1.77-3.32-1.8-1.41-.14-2.76.83-3.47.83-.72 0-1.82-.81-3-.79-1.54.02-2.96.9-3.76 2.28-1.6 2.78-.41 6.9 1.15 9.16.76 1.1 1.67 2.35 2.86 2.3 1.15-.04 1.58-.74 2.97-.74 1.38 0 1.77.74 2.98.72 1.23-.02 2.01-1.12 2.77-2.23.87-1.28 1.23-2.51 1.25-2.58-.03-.01-2.38-.92-2.4-3.63zM14.1 5.84c.63-.77 1.06-1.83.94-2.89-.91.04-2.01.61-2.66 1.37-.58.67-1.1 1.76-.96 2.8 1.02.08 2.05-.52 2.68-1.28z" }],
  ],
  microsoft: [
    ["rect", { fill: "#F25022", x: "2", y: "2", width: "9.5", height: "9.5" }],
    ["rect", { fill: "#7FBA00", x: "12.5", y: "2", width: "9.5", height: "9.5" }],
    ["rect", { fill: "#00A4EF", x: "2", y: "12.5", width: "9.5", height: "9.5" }],
    ["rect", { fill: "#FFB900", x: "12.5", y: "12.5", width: "9.5", height: "9.5" }],
  ],
  generic: [
    ["circle", { cx: "7.5", cy: "12", r: "4", fill: "none", stroke: "currentColor", "stroke-width": "2" }],
    ["path", { d: "M11.5 12H22M18.5 12v3.5M21 12v2.5", fill: "none", stroke: "currentColor", "stroke-width": "2",
      "stroke-linecap": "round" }],
  ],
};

/** The mark of a provider's preset (google, apple, microsoft; any other: the key), 18 px, hidden from readers:
 * the button's text names the provider. */
export function providerMark(preset) {
  const svg = document.createElementNS(SVG, "svg");
  for (const [name, value] of Object.entries({ viewBox: "0 0 24 24", width: "18", height: "18", "aria-hidden": "true",
    focusable: "false", class: "provider-mark" })) svg.setAttribute(name, value);
  for (const [tag, attributes] of MARKS[preset] || MARKS.generic) {
    const shape = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) shape.setAttribute(name, value);
    svg.append(shape);
  }
  return svg;
}
