// Small SVG plots drawn from the data with DOM calls (no chart library, no requests).
// Colours and strokes come from style.css classes: the page's policy refuses inline style.

const NS = "http://www.w3.org/2000/svg";
const HEIGHT = 240;
let WIDTH = 640;
let PAD = {};

// The plot's width in its own units, set as each plot is drawn: fewer on a phone, so the
// text (sized in those units) stays legible when the plot is scaled to the screen.
const NARROW = "(max-width: 700px)"; // style.css's phone layout

function layout() {
  const narrow = window.matchMedia(NARROW).matches;
  WIDTH = narrow ? 380 : 640;
  PAD = { left: 48, right: narrow ? 76 : 80, top: 12, bottom: 40 }; // line labels sit on the right
}

// A plot drawn by `build`, drawn again when the screen crosses into or out of the phone
// layout (a rotation, a resized window), so its units fit the width it is shown at.
export function responsive(build) {
  let svg = build();
  const query = window.matchMedia(NARROW);
  const redraw = () => {
    if (!svg.isConnected) {
      query.removeEventListener("change", redraw); // its page is gone
      return;
    }
    const next = build();
    svg.replaceWith(next);
    svg = next;
  };
  query.addEventListener("change", redraw);
  return svg;
}

// Ticks for a log axis: 1, 2, 3 and 5 × 10^n within [low, high], thinned to at most six.
function logTicks(low, high) {
  for (const steps of [[1, 2, 3, 5], [1, 2, 5], [1]]) {
    const out = [];
    for (let p = Math.floor(Math.log10(low)); p <= Math.ceil(Math.log10(high)); p += 1) {
      for (const m of steps) if (m * 10 ** p >= low && m * 10 ** p <= high) out.push(m * 10 ** p);
    }
    if (out.length <= 6) return out.length >= 2 ? out : [Math.round(low), Math.round(high)];
  }
  return [Math.round(low), Math.round(high)];
}

function s(tag, attributes = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Round tick values across [low, high]: about `count` of them, at 1, 2 or 5 × 10^n.
function ticks(low, high, count = 5) {
  const span = high - low || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((m) => m >= raw);
  const out = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step / 1e6; v += step) out.push(Number(v.toFixed(6)));
  return out;
}

// A frame: axes with ticks and titles; returns the SVG and the two scales.
function frame(label, x, y) {
  const inner = { w: WIDTH - PAD.left - PAD.right, h: HEIGHT - PAD.top - PAD.bottom };
  const sx = (v) => PAD.left + ((x.scale(v) - x.scale(x.low)) / (x.scale(x.high) - x.scale(x.low) || 1)) * inner.w;
  const sy = (v) => PAD.top + inner.h - ((v - y.low) / (y.high - y.low || 1)) * inner.h;
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "plot", role: "img", "aria-label": label },
    s("title", {}, label));
  const axes = s("g", { class: "axes" });
  for (const v of y.ticks) {
    axes.append(s("line", { class: "gridline", x1: PAD.left, x2: WIDTH - PAD.right, y1: sy(v), y2: sy(v) }),
      s("text", { x: PAD.left - 6, y: sy(v) + 4, "text-anchor": "end" }, String(v)));
  }
  for (const v of x.ticks) {
    axes.append(s("text", { x: sx(v), y: HEIGHT - PAD.bottom + 16, "text-anchor": "middle" }, x.format(v)));
  }
  axes.append(
    s("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + inner.h, y2: PAD.top + inner.h }),
    s("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + inner.h }),
    s("text", { class: "axis-title", x: PAD.left + inner.w / 2, y: HEIGHT - 4, "text-anchor": "middle" }, x.title),
    s("text", { class: "axis-title", x: 14, y: PAD.top + inner.h / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${PAD.top + inner.h / 2})` }, y.title),
  );
  svg.append(axes);
  return { svg, sx, sy };
}

function yRange(values, extra = []) {
  const low = Math.min(...values, ...extra);
  // VMAF tops out at 100; the floor is the next multiple of 10 under the worst frame.
  const bottom = Math.max(0, Math.min(90, Math.floor((low - 1) / 10) * 10));
  return { low: bottom, high: 100, ticks: ticks(bottom, 100, 4), title: "VMAF" };
}

// VMAF frame by frame, with the mean and 5th percentile as dashed lines.
export function perFramePlot(rendition, values, { mean, p5 } = {}) {
  layout();
  const last = Math.max(1, values.length - 1);
  const x = { low: 0, high: last, scale: (v) => v, ticks: ticks(0, last, 6).filter((v) => Number.isInteger(v)),
    format: String, title: "frame" };
  const y = yRange(values);
  const label = `VMAF of ${rendition} per frame: ${values.length} frames` +
    (mean != null ? `, mean ${mean.toFixed(1)}` : "") + (p5 != null ? `, 5th percentile ${p5.toFixed(1)}` : "");
  const { svg, sx, sy } = frame(label, x, y);
  // One point per pixel column at most: a long rendition's series stays a light path.
  const stride = Math.max(1, Math.floor(values.length / WIDTH));
  const path = values
    .filter((_, i) => i % stride === 0 || i === values.length - 1)
    .map((v, i, kept) => {
      const index = i === kept.length - 1 ? values.length - 1 : i * stride;
      return `${i ? "L" : "M"}${sx(index).toFixed(1)},${sy(v).toFixed(1)}`;
    })
    .join("");
  svg.append(s("path", { class: "series series-0", d: path }));
  let below = -Infinity; // the last label's baseline: close values' labels do not overlap
  for (const [name, value] of [["mean", mean], ["p5", p5]]) {
    if (value == null) continue;
    const at = Math.max(sy(value) + 4, below + 13);
    below = at;
    svg.append(
      s("line", { class: `marker marker-${name}`, x1: PAD.left, x2: WIDTH - PAD.right, y1: sy(value), y2: sy(value) }),
      s("text", { class: `marker-label marker-${name}`, x: WIDTH - PAD.right + 4, y: at }, `${name} ${value.toFixed(1)}`),
    );
  }
  svg.dataset.frames = String(values.length);
  return svg;
}

// Per-title: every measured (bitrate, VMAF) point by resolution, the target, and the rungs chosen.
export function rateQualityPlot({ points = [], chosen = [], target_vmaf: target } = {}) {
  layout();
  const all = [...points, ...chosen].filter((p) => p.kbps > 0 && Number.isFinite(p.vmaf));
  const kbps = all.map((p) => p.kbps);
  const low = Math.min(...kbps);
  const high = Math.max(...kbps);
  // Bitrate on a log scale: rungs span 100 kb/s to several Mb/s.
  const top = high > low ? high : low * 2;
  const x = { low, high: top, scale: Math.log10, ticks: logTicks(low, top), format: (v) => String(Math.round(v)),
    title: "bitrate (kb/s, log scale)" };
  const y = yRange(all.map((p) => p.vmaf), target ? [target] : []);
  const label = `Rate and quality: ${points.length} measured points, ${chosen.length} rungs chosen` +
    (target ? ` for a target of VMAF ${target}` : "");
  const { svg, sx, sy } = frame(label, x, y);
  const heights = [...new Set(points.map((p) => p.height))].sort((a, b) => b - a);
  heights.forEach((height, i) => {
    const mine = points.filter((p) => p.height === height).sort((a, b) => a.kbps - b.kbps);
    const series = `series series-${i % 6}`;
    svg.append(s("path", { class: series, d: mine.map((p, k) => `${k ? "L" : "M"}${sx(p.kbps).toFixed(1)},${sy(p.vmaf).toFixed(1)}`).join("") }));
    for (const p of mine) {
      // A point off the upper hull (another probe gives more VMAF for no more bits) is hollow.
      const hull = p.hull === false ? " off-hull" : "";
      svg.append(s("circle", { class: `point series-${i % 6}${hull}`, cx: sx(p.kbps), cy: sy(p.vmaf), r: 3.5 },
        s("title", {}, `${p.width}×${p.height} at ${Math.round(p.kbps)} kb/s: VMAF ${p.vmaf.toFixed(1)}` +
          `${p.crf != null ? ` (CRF ${p.crf})` : ""}${hull ? ", off the hull" : ""}`)));
    }
    // Bottom right: a rate–quality curve never goes there (many bits, few VMAF points).
    svg.append(s("text", { class: `legend series-${i % 6}`, x: WIDTH - PAD.right - 8, y: HEIGHT - PAD.bottom - 8 - i * 14,
      "text-anchor": "end" }, `● ${height}p`));
  });
  if (target) {
    svg.append(s("line", { class: "marker marker-target", x1: PAD.left, x2: WIDTH - PAD.right, y1: sy(target), y2: sy(target) }),
      s("text", { class: "marker-label marker-target", x: WIDTH - PAD.right + 4, y: sy(target) + 4 }, `target ${target}`));
  }
  for (const rung of chosen) {
    svg.append(s("g", { class: "chosen", "data-rung": rung.name },
      s("rect", { x: sx(rung.kbps) - 5, y: sy(rung.vmaf) - 5, width: 10, height: 10 }),
      s("text", { x: sx(rung.kbps), y: sy(rung.vmaf) + 18, "text-anchor": "middle" }, rung.name),
      s("title", {}, `chosen ${rung.name}: ${rung.width}×${rung.height} at ${Math.round(rung.kbps)} kb/s, VMAF ${rung.vmaf.toFixed(1)}`)));
  }
  return svg;
}
