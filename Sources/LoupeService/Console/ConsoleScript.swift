// The console page's script (inlined into ConsolePage.text): a client of the documented API only.
extension ConsolePage {
    /// The whole script: this file's part and the model card's (ConsoleCardScript.swift; function
    /// declarations are hoisted, so their order does not matter).
    static let script = mainScript + "\n" + cardScript

    static let mainScript = #"""
"use strict";
const $ = (id) => document.getElementById(id);
let models = [];
let lastSend = null;

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function svgEl(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmt(x, digits) { return x === null || x === undefined ? "—" : Number(x).toFixed(digits); }
function pct(x) { return x === null || x === undefined ? "—" : (100 * x).toFixed(2) + "%"; }
function current() {
  const name = $("model-select").value, version = Number($("version-select").value);
  return models.find((m) => m.name === name && m.version === version);
}
/// [H, W, C] of the selected model's input (the shipped model's until the card has loaded).
function inputShape() {
  const m = current();
  return m && m.card && m.card.inputShape && m.card.inputShape.length === 3 ? m.card.inputShape : [28, 28, 1];
}
function modelQuery() {
  const m = current();
  return m ? "model=" + encodeURIComponent(m.name) + "&version=" + m.version : "";
}
function showError(message) { $("error").textContent = message || ""; }

async function loadModels() {
  const r = await fetch("/api/models");
  const j = await r.json();
  models = j.models || [];
  const names = [...new Set(models.map((m) => m.name))];
  const sel = $("model-select");
  sel.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  fillVersions();
  if (!models.length) showError("No model is loaded yet.");
}
function fillVersions() {
  const name = $("model-select").value;
  const versions = models.filter((m) => m.name === name).map((m) => m.version).sort((a, b) => b - a);
  $("version-select").replaceChildren(...versions.map((v) => el("option", { value: String(v) }, String(v))));
  renderCard();
}

async function send(body, type, previewURL) {
  lastSend = { body, type, previewURL };
  showError("");
  const headers = { "Content-Type": type };
  const base = "resize=true&" + modelQuery();
  let r;
  try {
    r = await fetch("/predict?top_k=5&" + base, { method: "POST", headers, body });
  } catch (e) { showError("The server did not answer: " + e); return; }
  const j = await r.json();
  if (!r.ok) { showError(j.error || ("HTTP " + r.status)); return; }
  const p = j.predictions[0];
  $("top-class").textContent = p.label + " (class " + p["class"] + ") — " + pct(p.confidence);
  $("top-class").dataset.label = p.label;
  $("topk").replaceChildren(...p.top_k.map((k) => {
    const li = el("li");
    const bar = el("span", { class: "bar", role: "presentation" });
    const fill = el("span"); fill.style.width = (100 * k.confidence).toFixed(1) + "%"; bar.append(fill);
    li.append(el("span", {}, k.label), bar, el("span", { class: "num" }, pct(k.confidence)));
    return li;
  }));
  $("timing").textContent = "Server-Timing: " + (r.headers.get("Server-Timing") || "—");
  const preview = $("input-preview");
  preview.src = previewURL; preview.hidden = false;
  const method = $("method-select").value;
  const h = await fetch("/explain?format=png&method=" + method + "&" + base, { method: "POST", headers, body });
  if (h.ok) {
    const blob = await h.blob();
    const img = $("heatmap");
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    img.dataset.url = URL.createObjectURL(blob);
    img.src = img.dataset.url;
    img.hidden = false;
    $("heat-caption").textContent = "Red: evidence for " + p.label + "; blue: against it (" + method.replace(/_/g, " ") + ", " +
      (h.headers.get("Server-Timing") || "").replace(/, /g, " · ") + ").";
  } else {
    const e = await h.json();
    showError(e.error || ("explain: HTTP " + h.status));
  }
}

async function sendFile(file) {
  if (!file) return;
  const bytes = await file.arrayBuffer();
  const type = file.type || (file.name.toLowerCase().endsWith(".pgm") ? "image/x-portable-graymap" : "image/png");
  const url = URL.createObjectURL(file);
  if ($("invert").checked) {
    const img = new Image();
    img.onload = () => { const c = document.createElement("canvas"); c.width = img.width; c.height = img.height; c.getContext("2d").drawImage(img, 0, 0); sendCanvas(c, url); };
    img.src = url;
    return;
  }
  await send(bytes, type, url);
}

/// The canvas scaled to the model's input H × W, inverted when asked: raw bytes for /predict — C = 1 gray
/// (BT.601 luma, as the server decodes PNGs), C = 3 RGB.
function sendCanvas(source, previewURL) {
  const [h, w, c] = inputShape();
  const small = document.createElement("canvas"); small.width = w; small.height = h;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = "high";
  ctx.fillStyle = $("invert").checked ? "#fff" : "#000"; ctx.fillRect(0, 0, w, h);
  ctx.drawImage(source, 0, 0, w, h);
  const data = ctx.getImageData(0, 0, w, h).data;
  const bytes = new Uint8Array(w * h * c);
  const inv = $("invert").checked;
  for (let i = 0; i < w * h; i++) {
    if (c === 3) {
      for (let k = 0; k < 3; k++) bytes[3 * i + k] = inv ? 255 - data[4 * i + k] : data[4 * i + k];
    } else {
      const g = Math.round(0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2]);
      bytes[i] = inv ? 255 - g : g;
    }
  }
  send(bytes, "application/octet-stream", previewURL || small.toDataURL());
}

/// Shapes the drawing canvas like the model's input (longer side 280 px) and says what the model takes.
function fitCanvas() {
  const [h, w, c] = inputShape();
  const canvas = $("canvas"), side = 280, long = Math.max(h, w);
  const cw = Math.round(side * w / long), ch = Math.round(side * h / long);
  if (canvas.width !== cw || canvas.height !== ch) {
    canvas.width = cw; canvas.height = ch;
    canvas.style.aspectRatio = w + " / " + h;
    canvas.style.maxWidth = cw + "px";
    clearCanvas();
  }
  $("input-size").textContent = h + " × " + w + " " + (c === 3 ? "RGB" : "gray");
}

function clearCanvas() {
  const canvas = $("canvas"), ctx = canvas.getContext("2d");
  ctx.fillStyle = $("invert").checked ? "#fff" : "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  canvas.classList.toggle("inverted", $("invert").checked);
}

function setupCanvas() {
  const canvas = $("canvas"), ctx = canvas.getContext("2d");
  let drawing = false, last = null;
  function point(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  }
  function line(a, b) {
    ctx.strokeStyle = $("invert").checked ? "#000" : "#fff";
    ctx.lineWidth = Math.max(canvas.width, canvas.height) * 22 / 280; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  }
  canvas.addEventListener("pointerdown", (e) => { drawing = true; last = point(e); line(last, last); canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => { if (!drawing) return; const p = point(e); line(last, p); last = p; });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop); canvas.addEventListener("pointercancel", stop);
  $("clear").addEventListener("click", clearCanvas);
  $("invert").addEventListener("change", clearCanvas);
  $("classify-drawing").addEventListener("click", () => sendCanvas(canvas, canvas.toDataURL()));
  clearCanvas();
}

function setupFiles() {
  const zone = $("drop-zone");
  $("file-input").addEventListener("change", (e) => sendFile(e.target.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); sendFile(e.dataTransfer.files[0]); });
}

function psiClass(v) { return v === null || v === undefined ? "" : v < 0.1 ? "psi-ok" : v < 0.25 ? "psi-watch" : "psi-drift"; }

async function refreshStatus() {
  let j;
  try { const r = await fetch("/api/status"); if (!r.ok) return; j = await r.json(); } catch (e) { return; }
  const facts = $("ops-facts");
  const rows = [["Requests per second", fmt(j.requests_per_second, 2), "ops-rate"],
                ["Latency p50 / p99", fmt(j.latency_ms.p50, 2) + " / " + fmt(j.latency_ms.p99, 2) + " ms", "ops-latency"],
                ["Batch size (mean, p50)", fmt(j.batch_size.mean, 2) + ", " + fmt(j.batch_size.p50, 1), "ops-batch"],
                ["Queue depth", String(j.queue_depth), "ops-queue"], ["Workers busy", String(j.workers_busy), "ops-busy"]];
  const m = j.models.find((x) => { const c = current(); return c && x.name === c.name && x.version === c.version; }) || j.models[0];
  if (m && m.drift) {
    rows.push(["Drift window", m.drift.images + " images", "ops-window"]);
    rows.push(["Class PSI", fmt(m.drift.class_psi, 3), "ops-class-psi", psiClass(m.drift.class_psi)]);
    rows.push(["Intensity PSI", fmt(m.drift.intensity_psi, 3), "ops-intensity-psi", psiClass(m.drift.intensity_psi)]);
  }
  facts.replaceChildren();
  for (const [k, v, id, cls] of rows) { facts.append(el("dt", {}, k)); facts.append(el("dd", { id, class: cls || "" }, v)); }
  const shares = $("shares");
  shares.replaceChildren(...(m ? m.class_shares : []).map((s) => {
    const li = el("li");
    const bar = el("span", { class: "bar", role: "presentation" });
    const live = el("span"); live.style.width = (100 * s.live).toFixed(1) + "%";
    const exp = el("span", { class: "expected" }); exp.style.width = s.expected === null ? "0" : (100 * s.expected).toFixed(1) + "%";
    exp.style.height = "35%"; live.style.height = "65%";
    bar.append(live, exp);
    li.append(el("span", {}, s.label), bar, el("span", { class: "num" }, pct(s.live) + (s.expected === null ? "" : " / " + pct(s.expected))));
    return li;
  }));
}

$("model-select").addEventListener("change", fillVersions);
$("version-select").addEventListener("change", renderCard);
$("method-select").addEventListener("change", () => { if (lastSend) send(lastSend.body, lastSend.type, lastSend.previewURL); });
/// Everything that costs main-thread time — the canvas's 2D context, the model card (/api/models:
/// tables and SVG curves) and live operations (/api/status) — starts once the page's shell has been
/// presented (its first-contentful-paint entry), so the first paint waits for none of it: a JSON answer
/// arriving before that frame was presented used to run the card's rendering first and delay it.
/// Browsers without paint timing start after the first animation frame; a hidden tab (no paint)
/// after a second.
function start() {
  setupCanvas();
  setupFiles();
  loadModels().then(refreshStatus);
  setInterval(refreshStatus, 3000);
}
(function afterFirstPaint() {
  let started = false;
  const go = () => { if (!started) { started = true; start(); } };
  if (window.PerformanceObserver && (PerformanceObserver.supportedEntryTypes || []).includes("paint")) {
    new PerformanceObserver((list, observer) => { observer.disconnect(); setTimeout(go, 0); }).observe({ type: "paint", buffered: true });
    setTimeout(go, 1000);
  } else {
    requestAnimationFrame(() => setTimeout(go, 0));
  }
})();
"""#
}
