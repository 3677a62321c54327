// The web console served at GET / (for browsers): one self-contained page — HTML, CSS and JS, no CDN,
// no build step — that is a client of the documented API only: GET /api/models (model cards),
// POST /predict, POST /explain?format=png, GET /api/status. docs/api.md, "Web console".
import LoupeHTTP

enum ConsolePage {
    static let html: [UInt8] = Array(text.utf8)
    /// `html` gzipped once, at its first request (nil if zlib failed: then sent as it is).
    static let gzipped: [UInt8]? = Gzip.compress(html, level: 9)
    /// A strong validator of the page (it changes only with the binary).
    static let etag = "\"" + String(CanaryRouting.hash(text), radix: 16) + "\""

    /// The page: its markup here, the style sheet in ConsoleStyle.swift, the script in ConsoleScript.swift.
    static let text = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Loupe console</title>
<link rel="icon" href="data:,">
<style>
"""# + "\n" + style + "\n" + #"""
</style>
</head>
<body>
<header>
  <h1>Loupe console</h1>
  <form id="model-form" aria-label="Model">
    <label for="model-select">Model</label>
    <select id="model-select"></select>
    <label for="version-select">Version</label>
    <select id="version-select"></select>
  </form>
</header>
<main>
<section id="try" aria-labelledby="try-h">
  <h2 id="try-h">Try the model</h2>
  <div class="try-grid">
    <div>
      <div id="drop-zone">
        <p>Drop an image here, or choose a file:</p>
        <label for="file-input" class="visually-hidden">Image file (PNG, JPEG, WebP or PGM)</label>
        <input type="file" id="file-input" accept="image/png,image/jpeg,image/webp,image/x-portable-graymap,.png,.jpg,.jpeg,.webp,.pgm">
      </div>
      <p class="hint">PNG, JPEG, WebP or PGM. The model takes <span id="input-size">28 × 28 gray</span> images; other sizes are resized to it. Light objects on a dark background, as the model was trained.</p>
      <h3 id="draw-h">Or draw</h3>
      <canvas id="canvas" width="280" height="280" role="img" aria-labelledby="draw-h" aria-describedby="draw-help"></canvas>
      <p id="draw-help" class="hint">Draw with a mouse, finger or pen, then classify.</p>
      <div class="row">
        <button id="classify-drawing" type="button">Classify drawing</button>
        <button id="clear" type="button" class="secondary">Clear</button>
      </div>
      <div class="row">
        <input type="checkbox" id="invert"><label for="invert">Dark on light (invert)</label>
      </div>
      <div class="row">
        <label for="method-select">Explanation method</label>
        <select id="method-select">
          <option value="integrated_gradients">Integrated gradients</option>
          <option value="saliency">Saliency</option>
          <option value="gradient_x_input">Gradient × input</option>
          <option value="occlusion">Occlusion</option>
        </select>
      </div>
    </div>
    <div aria-live="polite">
      <h3>Prediction</h3>
      <p id="top-class">Choose or draw an image.</p>
      <ol id="topk" aria-label="Top classes"></ol>
      <p id="timing" class="hint"></p>
      <h3>What the model looked at</h3>
      <figure>
        <img id="input-preview" alt="The image sent" hidden>
        <img id="heatmap" alt="Attribution heatmap: red pixels raised the class's probability, blue ones lowered it" hidden>
        <figcaption id="heat-caption">Red: evidence for the class; blue: against it (from POST /explain).</figcaption>
      </figure>
      <p id="error" role="alert"></p>
    </div>
  </div>
</section>
<section id="card" aria-labelledby="card-h">
  <h2 id="card-h">Model card</h2>
  <dl id="card-facts"></dl>
  <h3>Architecture</h3>
  <table id="arch"><thead><tr><th scope="col">#</th><th scope="col">Layer</th><th scope="col">Settings</th></tr></thead><tbody></tbody></table>
  <h3>Training curves</h3>
  <div class="legend"><span><span class="swatch" style="background:#0a4fc2"></span>training</span><span><span class="swatch" style="background:#c2410a"></span>validation</span></div>
  <div id="curves"></div>
  <h3>Per class</h3>
  <p id="per-class-note" class="hint"></p>
  <table id="per-class"><thead><tr><th scope="col">Class</th><th scope="col">Training share</th><th scope="col">Precision</th><th scope="col">Recall</th></tr></thead><tbody></tbody></table>
</section>
<section id="ops" aria-labelledby="ops-h">
  <h2 id="ops-h">Live operations</h2>
  <dl id="ops-facts"></dl>
  <h3>Predicted class shares</h3>
  <p class="hint">Live share of predictions (bar) against the training reference (grey).</p>
  <ul id="shares" class="shares"></ul>
  <p class="hint">Last minute, refreshed every 3 s from <a href="/api/status">/api/status</a>. PSI below 0.1: stable; 0.1–0.25: watch; above: drift.</p>
</section>
</main>
<script>
"""# + "\n" + script + "\n" + #"""
</script>
</body>
</html>
"""#
}
