// "Scan with camera": the browser's own QR reader (BarcodeDetector, the Shape Detection API) on the camera's
// video, for the pair form and for a browser led to pair after continuing with a provider (federation_devices.js).
// Offered only where the browser has one that reads QR codes (Chrome on Android, macOS and ChromeOS); elsewhere
// the code is pasted or its link opened.

import { setText } from "./i18n.js";
import { $, clearMessage, say } from "./ui.js";

const DETECT_MS = 300;
const live = new Set();      // the scanners whose camera is on

/** Shows the pair form's scan button where the browser can read QR codes; `found(text)` gets the text read. */
export async function initCameraScan({ found }) {
  await cameraScanner({ button: $("#pair-scan"), area: $("#pair-scan-area"), video: $("#pair-video"),
    note: $("#pair-scan-note"), found });
}

/** A scan button (`button` in `area`, the camera shown in `video`, what it does said in `note`) that gives the text
 * it reads to `found`; `area` shows only where the browser can read QR codes. */
export async function cameraScanner({ button, area, video, note, found }) {
  let stream = null;
  let timer = null;
  let detecting = false;
  const scanner = {
    stop() {
      clearInterval(timer);
      timer = null;
      stream?.getTracks().forEach((track) => track.stop());
      stream = null;
      live.delete(scanner);
      video.srcObject = null;
      video.hidden = true;
      setText(button, "web.pair.scan");
    },
  };
  const detectIn = async (detector) => {
    if (detecting || !stream) return;
    detecting = true;
    try {
      const [code] = await detector.detect(video);
      if (code?.rawValue && stream) {
        scanner.stop();
        found(code.rawValue);
      }
    } catch {
      // A frame that is not ready yet; the next tick tries again.
    } finally {
      detecting = false;
    }
  };
  const start = async () => {
    clearMessage(note);
    try {
      const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      live.add(scanner);
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      setText(button, "web.pair.scan_stop");
      say(note, "web.pair.scan_hint");
      timer = setInterval(() => detectIn(detector), DETECT_MS);
    } catch (error) {
      console.warn(`citylogin: no camera scan (${error.name})`);
      scanner.stop();
      say(note, "web.pair.scan_failed");
    }
  };
  button.addEventListener("click", () => (stream ? scanner.stop() : start()));
  area.hidden = !(await canScan());
  return scanner;
}

async function canScan() {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return false;
  try {
    return (await window.BarcodeDetector.getSupportedFormats()).includes("qr_code");
  } catch {
    return false;
  }
}

/** Turns every camera off (also when the form is left or sent). */
export function stopCameraScan() {
  for (const scanner of [...live]) scanner.stop();
}
