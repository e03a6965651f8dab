// A job's HLS ladder in one <video>, with a quality menu ("Auto" or one rung).
//
// The output bucket is private: every playlist and segment is read through its own
// presigned link, listed by GET /api/jobs/:id/files. A playlist names its segments by
// relative URI, which would lose the signature, so:
// - the browser's own HLS player (Safari, recent Chromium) is given the playlists as
//   blob: URLs, each rewritten to name the presigned links of what it lists;
// - elsewhere hls.js (vendored, imported on first use) loads the presigned master and
//   each request it makes for a relative URI is opened at that object's presigned link.

import * as api from "./api.js";
import { clear, h, uid } from "./ui.js";

const HLS_TYPE = "application/vnd.apple.mpegurl";
const MAX_PAGES = 50; // 50 000 objects: a very long ladder; a runaway list stops here

// Every object of the job's outputs by its name under the dest (`360p/seg_00001.m4s`).
export async function signedLinks(jobId, signal) {
  const links = new Map();
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const query = new URLSearchParams({ count: "1000" });
    if (cursor) query.set("cursor", cursor);
    const answer = await api.get(`/jobs/${encodeURIComponent(jobId)}/files?${query}`, { signal });
    for (const item of answer.items || []) links.set(item.name, item.url);
    cursor = answer.next;
    if (!cursor) break;
  }
  return links;
}

function attributes(list) {
  const found = {};
  for (const [, key, value] of list.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) found[key] = value.replace(/^"|"$/g, "");
  return found;
}

// The master playlist's variants, as its EXT-X-STREAM-INF lines describe them.
export function parseMaster(text) {
  const lines = text.split(/\r?\n/);
  const variants = [];
  lines.forEach((line, i) => {
    if (!line.startsWith("#EXT-X-STREAM-INF:")) return;
    const facts = attributes(line.slice("#EXT-X-STREAM-INF:".length));
    const uri = lines.slice(i + 1).find((next) => next.trim() && !next.startsWith("#"))?.trim();
    const [width, height] = (facts.RESOLUTION || "").split("x").map(Number);
    variants.push({
      uri,
      name: uri ? uri.split("/")[0] : "",
      width: width || null,
      height: height || null,
      bandwidth: Number(facts["AVERAGE-BANDWIDTH"] || facts.BANDWIDTH) || null,
      codecs: facts.CODECS || "",
    });
  });
  return variants;
}

// A URI in the playlist `base` (a name under the dest) as a name under the dest.
function nameFrom(base, uri) {
  const url = new URL(uri, `https://dest.invalid/${base}`);
  return url.host === "dest.invalid" ? decodeURIComponent(url.pathname.slice(1)) : null;
}

// The playlist with each URI (lines and URI="..." attributes) replaced by `to(name)`.
function rewrite(text, base, to) {
  const swap = (uri) => {
    const name = nameFrom(base, uri);
    const target = name === null ? null : to(name);
    if (!target) throw new Error(`${base} names ${uri}, which is not among the job's outputs`);
    return target;
  };
  return text
    .split(/\r?\n/)
    .map((line) => {
      if (line.startsWith("#")) return line.replace(/URI="([^"]+)"/g, (_, uri) => `URI="${swap(uri)}"`);
      return line.trim() ? swap(line.trim()) : line;
    })
    .join("\n");
}

// The master with only the variant `keep` (its audio group stays): one rung, natively.
function onlyVariant(text, keep) {
  const lines = text.split(/\r?\n/);
  const kept = [];
  for (let i = 0; i < lines.length; i += 1) {
    if (lines[i].startsWith("#EXT-X-STREAM-INF:")) {
      const j = lines.findIndex((next, k) => k > i && next.trim() && !next.startsWith("#"));
      if (lines[j]?.trim() !== keep) {
        i = j;
        continue;
      }
    }
    kept.push(lines[i]);
  }
  return kept.join("\n");
}

async function text(url, signal) {
  const response = await fetch(url, { signal, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new Error(`storage answered ${response.status} for a playlist`);
  return response.text();
}

function rungLabel(height, bitsPerSecond) {
  const rate = bitsPerSecond ? ` · ${Math.round(bitsPerSecond / 1000)} kb/s` : "";
  return `${height ? `${height}p` : "rung"}${rate}`;
}

// Native HLS: "Auto" is the whole master; a rung is a master holding that variant alone.
async function playNatively(video, master, variants, links, signal, made) {
  const blob = (body) => {
    const url = URL.createObjectURL(new Blob([body], { type: HLS_TYPE }));
    made.push(url);
    return url;
  };
  const playlists = new Map();
  const listed = []; // every media playlist the master names: variants and audio
  rewrite(master, "master.m3u8", (name) => {
    listed.push(name);
    return name;
  });
  for (const name of listed) {
    if (!links.has(name)) throw new Error(`master.m3u8 names ${name}, which is not among the job's outputs`);
    const body = await text(links.get(name), signal);
    playlists.set(name, blob(rewrite(body, name, (segment) => links.get(segment))));
  }
  const sources = [blob(rewrite(master, "master.m3u8", (name) => playlists.get(name)))];
  for (const variant of variants) sources.push(blob(rewrite(onlyVariant(master, variant.uri), "master.m3u8", (name) => playlists.get(name))));
  // Its metadata, or why not: a browser's own player may refuse a codec (AV1, say) that
  // hls.js can hand to Media Source Extensions.
  await new Promise((resolve, reject) => {
    video.addEventListener("loadedmetadata", resolve, { once: true });
    video.addEventListener("error", () => reject(new Error(video.error?.message || "the browser's own player refused it")), { once: true });
    video.src = sources[0];
  });
  return {
    engine: "native",
    rungs: variants.map((v) => rungLabel(v.height, v.bandwidth)),
    pick(index) {
      const at = video.currentTime;
      const playing = !video.paused;
      video.addEventListener("loadedmetadata", () => {
        video.currentTime = at;
        if (playing) video.play().catch(() => {});
      }, { once: true });
      video.src = sources[index + 1]; // index -1 is Auto
    },
    destroy() {},
  };
}

// hls.js: its levels are the rungs; currentLevel -1 is its own choice (Auto).
async function playWithHlsJs(video, masterUrl, links) {
  const { default: Hls } = await import("./hls.js");
  if (!Hls.isSupported()) throw new Error("this browser plays no HLS (no Media Source Extensions)");
  const base = new URL(".", masterUrl.split("?")[0]).href;
  const signed = new Set(links.values());
  const hls = new Hls({
    // Fragments are fMP4 (CMAF), passed through without transmuxing: a worker would buy
    // little, and it would need `worker-src blob:` in the page's policy.
    enableWorker: false,
    xhrSetup(xhr, url) {
      if (signed.has(url) || !url.startsWith(base)) return; // presigned already, or elsewhere
      const link = links.get(decodeURIComponent(url.slice(base.length).split("?")[0]));
      if (link) xhr.open("GET", link, true);
    },
  });
  const ready = new Promise((resolve, reject) => {
    hls.once(Hls.Events.MANIFEST_PARSED, () => resolve());
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) reject(new Error(`hls.js: ${data.details}`));
    });
  });
  hls.loadSource(masterUrl);
  hls.attachMedia(video);
  await ready;
  return {
    engine: "hls.js",
    rungs: hls.levels.map((level) => rungLabel(level.height, level.averageBitrate || level.bitrate)),
    pick(index) {
      hls.currentLevel = index; // -1: hls.js picks by bandwidth again
    },
    destroy() {
      hls.destroy();
    },
  };
}

// The player section's content: the <video>, the menu and a line saying what plays.
export function player(job, links, variants, master, signal) {
  // CORS (the output bucket allows this page's origin): Chromium's own HLS player reads
  // playlists and segments from another origin only in CORS mode.
  const video = h("video", { controls: true, preload: "metadata", playsinline: true, crossorigin: "anonymous",
    class: "player-video", "aria-label": `Player of job ${job.id}` });
  const menu = h("select", { id: uid("quality"), disabled: true }, h("option", { value: "-1" }, "Auto"));
  const status = h("p", { class: "muted player-status", id: "player-status", "aria-live": "polite" }, "Loading the ladder…");
  const wrap = h("div", { class: "player", id: "player" }, video,
    h("div", { class: "player-controls" }, h("label", { for: menu.id }, "Quality"), menu), status);
  const made = [];
  let engine = null;
  const showPlaying = (shown) => {
    // The rung nearest the frames' height: a decoder may report a row more or less than
    // the playlist's RESOLUTION (an odd cropped height).
    const heights = variants.map((v) => v.height).filter(Boolean);
    const height = shown && heights.length
      ? heights.reduce((best, each) => (Math.abs(each - shown) < Math.abs(best - shown) ? each : best))
      : shown;
    wrap.dataset.playing = height ? String(height) : "";
    if (engine) status.textContent = `${engine === "native" ? "The browser's own HLS player" : "hls.js"}${height ? `, playing ${height}p` : ""}`;
  };
  // Either engine: the rung that plays is the one whose frames the <video> shows.
  video.addEventListener("resize", () => showPlaying(video.videoHeight));
  const masterUrl = links.get("master.m3u8");
  const start = video.canPlayType(HLS_TYPE)
    ? playNatively(video, master, variants, links, signal, made).catch((error) => {
      if (error.name === "AbortError") throw error;
      console.info(`the browser's own HLS player failed (${error.message}): hls.js plays instead`);
      video.removeAttribute("src");
      video.load();
      return playWithHlsJs(video, masterUrl, links);
    })
    : playWithHlsJs(video, masterUrl, links);
  start
    .then((playing) => {
      engine = playing.engine;
      wrap.dataset.engine = engine;
      clear(menu, h("option", { value: "-1" }, "Auto"), playing.rungs.map((label, i) => h("option", { value: String(i) }, label)));
      menu.disabled = false;
      menu.addEventListener("change", () => playing.pick(Number(menu.value)));
      signal.addEventListener("abort", () => playing.destroy());
      showPlaying(video.videoHeight);
    })
    .catch((error) => {
      if (error.name === "AbortError") return;
      status.textContent = `Cannot play the ladder: ${error.message}`;
      status.classList.add("error");
    });
  signal.addEventListener("abort", () => made.forEach((url) => URL.revokeObjectURL(url)));
  return wrap;
}

