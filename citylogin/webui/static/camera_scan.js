// "Scan with camera" on the pair form: the browser's own QR reader (BarcodeDetector, the Shape
// Detection API) on the camera's video. Offered only where the browser has one that reads QR codes
// (Chrome on Android, macOS and ChromeOS); elsewhere the code is pasted or its link opened.

import { setText } from "./i18n.js";
import { $, clearMessage, say } from "./ui.js";

const DETECT_MS = 300;

let stream = null;
let timer = null;
let onCode = () => {};

/** Shows the scan button where the browser can read QR codes; `found(text)` gets the text read. */
export async function initCameraScan({ found }) {
  onCode = found;
  $("#pair-scan").addEventListener("click", () => (stream ? stopCameraScan() : startScan()));
  $("#pair-scan-area").hidden = !(await canScan());
}

async function canScan() {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return false;
  try {
    return (await window.BarcodeDetector.getSupportedFormats()).includes("qr_code");
  } catch {
    return false;
  }
}

async function startScan() {
  const video = $("#pair-video");
  clearMessage($("#pair-scan-note"));
  try {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    setText($("#pair-scan"), "web.pair.scan_stop");
    say($("#pair-scan-note"), "web.pair.scan_hint");
    timer = setInterval(() => detectIn(detector, video), DETECT_MS);
  } catch (error) {
    console.warn(`citylogin: no camera scan (${error.name})`);
    stopCameraScan();
    say($("#pair-scan-note"), "web.pair.scan_failed");
  }
}

let detecting = false;

async function detectIn(detector, video) {
  if (detecting || !stream) return;
  detecting = true;
  try {
    const [code] = await detector.detect(video);
    if (code?.rawValue && stream) {
      stopCameraScan();
      onCode(code.rawValue);
    }
  } catch {
    // A frame that is not ready yet; the next tick tries again.
  } finally {
    detecting = false;
  }
}

/** Turns the camera off (also when the form is left or sent). */
export function stopCameraScan() {
  clearInterval(timer);
  timer = null;
  stream?.getTracks().forEach((track) => track.stop());
  stream = null;
  const video = $("#pair-video");
  video.srcObject = null;
  video.hidden = true;
  setText($("#pair-scan"), "web.pair.scan");
}
