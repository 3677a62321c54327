// The console page's style sheet (inlined into ConsolePage.text).
extension ConsolePage {
    static let style = #"""
:root { --fg: #1b1b1f; --muted: #4a4d55; --bg: #ffffff; --panel: #f4f5f8; --line: #c9ccd4; --accent: #0a4fc2; --good: #0b6b2f; --warn: #8a4b00; --bad: #a3161b; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .75rem 1rem; background: #12213f; color: #fff; }
header h1 { font-size: 1.25rem; margin: 0; }
header form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
header label { font-size: .95rem; }
select, button, input[type=checkbox] { font: inherit; }
select, button { min-height: 2.5rem; padding: .3rem .6rem; border-radius: .4rem; border: 1px solid var(--line); background: #fff; color: var(--fg); }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: 1fr; max-width: 1200px; margin: 0 auto; }
@media (min-width: 900px) { main { grid-template-columns: 1fr 1fr; } #try { grid-column: 1 / -1; } }
section { background: var(--panel); border-radius: .6rem; padding: 1rem; min-width: 0; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
h3 { font-size: 1rem; margin: 1rem 0 .5rem; }
.try-grid { display: grid; gap: 1rem; grid-template-columns: 1fr; }
@media (min-width: 700px) { .try-grid { grid-template-columns: minmax(0, 300px) 1fr; } }
#drop-zone { border: 2px dashed var(--muted); border-radius: .6rem; padding: 1rem; text-align: center; background: #fff; }
#drop-zone.over { border-color: var(--accent); background: #e8effc; }
#file-input { display: block; margin: .5rem auto 0; max-width: 100%; }
.hint { color: var(--muted); font-size: .9rem; margin: .3rem 0; }
#canvas { display: block; width: 100%; max-width: 280px; aspect-ratio: 1; background: #000; border-radius: .4rem; touch-action: none; cursor: crosshair; }
#canvas.inverted { background: #fff; }
.row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin-top: .5rem; }
#topk { list-style: none; padding: 0; margin: 0; }
#topk li { display: grid; grid-template-columns: 8rem 1fr 4.5rem; gap: .5rem; align-items: center; margin: .25rem 0; }
.bar { height: 1rem; background: #dfe3ea; border-radius: .3rem; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
#top-class { font-size: 1.2rem; font-weight: 600; margin: .25rem 0 .5rem; }
figure { margin: 0; display: flex; flex-wrap: wrap; gap: .75rem; }
figure img { width: 168px; height: 168px; object-fit: contain; image-rendering: pixelated; background: #000; border-radius: .4rem; }
figcaption { flex-basis: 100%; color: var(--muted); font-size: .9rem; }
#error { color: var(--bad); font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); }
svg.chart { width: 100%; height: auto; background: #fff; border-radius: .4rem; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--muted); }
.legend { display: flex; gap: 1rem; font-size: .9rem; color: var(--muted); }
.swatch { display: inline-block; width: .9rem; height: .25rem; vertical-align: middle; margin-right: .3rem; }
.shares li { display: grid; grid-template-columns: 7rem 1fr 8.5rem; gap: .5rem; align-items: center; margin: .2rem 0; font-size: .9rem; }
.shares { list-style: none; padding: 0; margin: 0; }
.bar .expected { background: #8f96a3; }
.psi-ok { color: var(--good); } .psi-watch { color: var(--warn); } .psi-drift { color: var(--bad); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
"""#
}
