// The console script's model card (inlined into ConsolePage.text with the rest of the script): the
// card's facts, architecture, per-class table and the training curves as SVG, from GET /api/models.
extension ConsolePage {
    static let cardScript = #"""
function renderCard() {
  const m = current();
  const facts = $("card-facts");
  facts.replaceChildren();
  $("arch").tBodies[0].replaceChildren();
  $("per-class").tBodies[0].replaceChildren();
  $("curves").replaceChildren();
  fitCanvas();
  if (!m || !m.card) return;
  const c = m.card, t = c.training || {};
  const add = (k, v, id) => { facts.append(el("dt", {}, k)); const d = el("dd", id ? { id } : {}, v); facts.append(d); };
  add("Model", m.name + " version " + m.version);
  add("SHA-256", m.sha256.slice(0, 16) + "…");
  add("Parameters", c.parameterCount.toLocaleString("en-US"));
  add("Input", c.inputShape.join(" × "));
  add("Labels", c.labels.join(", "));
  add("Dataset", t.dataset + (t.trainExamples ? " (" + t.trainExamples + " training, " + (t.validationExamples || 0) + " validation images)" : ""));
  if (!t.epochs) add("Recipe", "none: not trained by loupe train");
  else add("Recipe", [t.epochs + " epochs", t.batchSize ? "batch " + t.batchSize : null, t.optimizer, t.learningRate ? "learning rate " + t.learningRate : null,
                 t.l2 ? "L2 " + t.l2 : null, "seed " + t.seed].filter(Boolean).join(", "));
  add("Test accuracy", t.testAccuracy !== undefined ? pct(t.testAccuracy) + (t.testExamples ? " on " + t.testExamples + " images" : "") : "not recorded", "test-accuracy");
  if (t.validationAccuracy !== undefined) add("Validation accuracy", pct(t.validationAccuracy));
  add("Created", t.createdAt + " by " + t.engineVersion);
  const body = $("arch").tBodies[0];
  c.architecture.layers.forEach((layer, i) => {
    const settings = Object.entries(layer).filter(([k]) => k !== "type").map(([k, v]) => k + " " + (Array.isArray(v) ? v.join("×") : v)).join(", ");
    const tr = el("tr"); tr.append(el("td", {}, String(i + 1)), el("td", {}, layer.type), el("td", {}, settings)); body.append(tr);
  });
  if (c.history && c.history.length) {
    $("curves").append(
      chart("loss-curve", "Loss per epoch", c.history, "loss", "val_loss"),
      chart("accuracy-curve", "Accuracy per epoch", c.history, "accuracy", "val_accuracy"));
  } else {
    $("curves").append(el("p", { class: "hint" }, c.historyProblem || "No training history."));
  }
  const pc = $("per-class").tBodies[0];
  const metrics = c.classMetrics;
  $("per-class-note").textContent = metrics ? "Precision and recall on the " + (t.testExamples || "") + " test images." :
    "Per-class precision and recall are not recorded in this model file (" + (t.epochs ? "trained before loupe train recorded them" : "not trained by loupe train") +
    "; loupe evaluate --json measures them)" + (c.classPriors ? "; training shares are." : ".");
  c.labels.forEach((label, i) => {
    const tr = el("tr");
    tr.append(el("td", {}, label), el("td", {}, c.classPriors ? pct(c.classPriors[i]) : "—"),
              el("td", {}, metrics ? fmt(metrics[i].precision, 3) : "—"), el("td", {}, metrics ? fmt(metrics[i].recall, 3) : "—"));
    pc.append(tr);
  });
}

function chart(id, title, rows, trainKey, valKey) {
  const W = 420, H = 220, L = 48, R = 12, T = 24, B = 36;
  const values = rows.flatMap((r) => [r[trainKey], r[valKey]]).filter((v) => v !== undefined && v !== null);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
  const n = rows.length;
  const x = (i) => L + (n === 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1));
  const y = (v) => T + (hi - v) * (H - T - B) / (hi - lo);
  const svg = svgEl("svg", { id, class: "chart", viewBox: "0 0 " + W + " " + H, role: "img", "aria-labelledby": id + "-title" });
  svg.append(svgEl("title", { id: id + "-title" }, title + ": training and validation, " + n + " epochs"));
  svg.append(svgEl("text", { x: L, y: 16 }, title));
  for (let k = 0; k <= 4; k++) {
    const v = lo + (hi - lo) * k / 4;
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e5ea" }));
    svg.append(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(3)));
  }
  rows.forEach((r, i) => svg.append(svgEl("text", { x: x(i), y: H - B + 16, "text-anchor": "middle" }, String(r.epoch))));
  svg.append(svgEl("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "epoch"));
  for (const [key, colour, cls] of [[trainKey, "#0a4fc2", "train"], [valKey, "#c2410a", "val"]]) {
    const pts = rows.map((r, i) => [i, r[key]]).filter(([, v]) => v !== undefined && v !== null);
    if (!pts.length) continue;
    svg.append(svgEl("polyline", { points: pts.map(([i, v]) => x(i) + "," + y(v)).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const [i, v] of pts) {
      const c = svgEl("circle", { cx: x(i), cy: y(v), r: 3.5, fill: colour, class: "point " + cls });
      c.append(svgEl("title", {}, (cls === "train" ? "training " : "validation ") + key.replace("val_", "") + " epoch " + rows[i].epoch + ": " + v.toFixed(4)));
      svg.append(c);
    }
  }
  return svg;
}
"""#
}
