// A job's renditions: one row each (name, resolution, codec, bitrate, size, VMAF mean and
// 5th percentile), a per-frame VMAF plot for each measured one, and, for a per-title
// ladder, the rate–quality points its plan measured with the rungs it chose.

import { bytes, h, table } from "./ui.js";
import { perFramePlot, rateQualityPlot, responsive } from "./plots.js";

const RENDITION_KINDS = ["video", "playlist", "segments"];

export const nameOf = (output) => output.name || String(output.key || "").split("/").pop();

export function bitrate(bps) {
  const value = Number(bps);
  if (!Number.isFinite(value) || value <= 0) return "";
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)} Mb/s` : `${Math.round(value / 1e3)} kb/s`;
}

// Outputs grouped by rendition (a ladder's MP4, playlist and segments; a one-file job's
// video is its own), tallest first; `variants` (from the master playlist) fill in what a
// ladder without MP4s records on no output (resolution, codecs, bandwidth).
export function renditionsOf(outputs, variants = []) {
  const groups = new Map();
  for (const output of outputs || []) {
    if (!RENDITION_KINDS.includes(output.kind)) continue;
    const name = output.rendition || (output.kind === "video" ? nameOf(output) : null);
    if (!name || name === "audio") continue;
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(output);
  }
  const rows = [...groups].map(([name, mine]) => {
    const video = mine.find((o) => o.kind === "video");
    const segments = mine.find((o) => o.kind === "segments");
    const variant = variants.find((v) => v.name === name);
    return {
      name,
      width: video?.width ?? variant?.width ?? null,
      height: video?.height ?? variant?.height ?? null,
      codec: video ? [video.codec, video.profile].filter(Boolean).join(" ") : (variant?.codecs || "").split(",")[0],
      bitRate: video?.bit_rate ?? variant?.bandwidth ?? null,
      size: video?.size ?? segments?.size ?? null,
      quality: mine.find((o) => o.quality)?.quality ?? null,
    };
  });
  return rows.sort((a, b) => (b.height || 0) - (a.height || 0) || (a.name < b.name ? -1 : 1));
}

function vmafCells(quality) {
  if (!quality) return ["", ""];
  if (quality.status !== "ok") {
    const failed = h("span", { class: "quality-failed", title: quality.reason || "" }, `failed: ${quality.reason || "no reason given"}`);
    return [failed, ""];
  }
  if (!quality.vmaf) return ["", ""]; // measured without VMAF (PSNR or SSIM only)
  return [quality.vmaf.mean.toFixed(1), quality.vmaf.p5.toFixed(1)];
}

export function renditionsTable(rows) {
  const headers = ["Name", "Resolution", "Codec", "Bitrate", "Size", "VMAF mean", "VMAF p5"];
  const trs = rows.map((row) => {
    const cells = [
      h("span", { class: "key" }, row.name),
      row.width && row.height ? `${row.width}×${row.height}` : "",
      row.codec || "",
      bitrate(row.bitRate),
      bytes(row.size),
      ...vmafCells(row.quality),
    ];
    return h("tr", { dataset: { rendition: row.name } }, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)));
  });
  const wrap = table("Renditions", headers, trs);
  // A table that scrolls sideways on a phone, rather than turning into cards: its columns
  // are read across (rung against rung).
  wrap.classList.add("scroll");
  return wrap;
}

async function series(output, signal) {
  const response = await fetch(output.url, { signal, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new Error(`storage answered ${response.status}`);
  return response.json();
}

// One figure per measured rendition; each is filled in when its series has been read.
export function perFramePlots(rows, outputs, signal) {
  const measured = rows.filter((row) => row.quality?.status === "ok" && row.quality.vmaf && row.quality.series);
  if (!measured.length) return null;
  return h("div", { class: "plots", id: "vmaf-plots" }, measured.map((row) => {
    const file = outputs.find((o) => nameOf(o) === row.quality.series);
    const figure = h("figure", { class: "plot-figure", dataset: { rendition: row.name } },
      h("figcaption", null, `${row.name}: VMAF per frame`), h("p", { class: "muted" }, "Reading the series…"));
    if (!file?.url) {
      figure.lastChild.textContent = "No link to its series.";
      return figure;
    }
    series(file, signal)
      .then((measurement) => {
        const values = measurement.series?.vmaf || [];
        figure.lastChild.replaceWith(responsive(() => perFramePlot(row.name, values, row.quality.vmaf)));
      })
      .catch((error) => {
        if (error.name !== "AbortError") figure.lastChild.textContent = `Could not read its series: ${error.message}`;
      });
    return figure;
  }));
}

// The plan's per-title ladder (plan.ladder), when it has one.
export function ladderView(ladder) {
  if (!ladder || ladder.mode !== "per-title") return null;
  const points = ladder.points || [];
  const chosen = ladder.chosen || [];
  const cpu = ladder.probe_cpu_seconds != null ? ` The probes took ${Number(ladder.probe_cpu_seconds).toFixed(1)} CPU seconds.` : "";
  return [
    h("p", { class: "muted", id: "ladder-summary" },
      `Target VMAF ${ladder.target_vmaf}: ${chosen.length} rung(s) chosen from ${points.length} measured point(s). ` +
      "Each line is one resolution's probe encodes (a hollow point is off the upper hull); a square is a rung of the ladder." + cpu),
    points.length || chosen.length
      ? h("figure", { class: "plot-figure", id: "rate-quality" },
        h("figcaption", null, "Rate–quality of the probe encodes"), responsive(() => rateQualityPlot(ladder)))
      : null,
    chosen.length
      ? table("Chosen rungs", ["Rung", "Resolution", "CRF", "Bitrate (expected)", "VMAF (expected)", "Target", "Max rate"],
        chosen.map((rung) => [
          rung.name, `${rung.width}×${rung.height}`, rung.crf ?? "", bitrate(rung.kbps * 1000), Number(rung.vmaf).toFixed(1),
          rung.target ?? ladder.target_vmaf ?? "", rung.maxrate ?? "",
        ]))
      : null,
  ];
}
