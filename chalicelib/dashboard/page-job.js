// One job: its facts, source probe, phase timeline, task grid (chunked plans), the
// ladder's player and renditions (page-job-renditions.js, player.js), outputs (a table
// with download links) and a preview, the error, cancel and restart.

import * as api from "./api.js";
import { bitrate, ladderView, nameOf, perFramePlots, renditionsOf, renditionsTable } from "./page-job-renditions.js";
import { parseMaster, player, signedLinks } from "./player.js";
import {
  TERMINAL,
  badge,
  button,
  bytes,
  clear,
  dl,
  errorBox,
  h,
  notify,
  progressBar,
  seconds,
  table,
  when,
} from "./ui.js";

// Each section redraws only when its data changed, so a playing <video> or a
// focused button is not replaced by every refresh.
function section(title, id) {
  const body = h("div", { class: "section-body" });
  const el = h("section", { class: "card", id, "aria-labelledby": `${id}-title`, hidden: true },
    h("h2", { id: `${id}-title` }, title), body);
  let drawn = null;
  return {
    el,
    draw(data, build) {
      const signature = JSON.stringify(data ?? null);
      if (signature === drawn) return;
      drawn = signature;
      const content = data === null || data === undefined ? null : build(data);
      el.hidden = !content;
      clear(body, content);
    },
  };
}

function probeView(probe) {
  const streams = probe.streams || [];
  const scalars = Object.entries(probe).filter(([, v]) => v !== null && typeof v !== "object");
  const keys = [...new Set(streams.flatMap((s) => Object.keys(s)))];
  return [
    dl(scalars.map(([k, v]) => [k.replace(/_/g, " "), k === "duration" ? seconds(v) : String(v)])),
    streams.length
      ? table("Streams", keys, streams.map((s) => keys.map((k) => (s[k] === undefined ? "" : String(s[k])))))
      : null,
  ];
}

function timeline(phases, status, updated) {
  const all = { ...(phases || {}) };
  // How it ended, when the worker did not record it as a phase (an error, a cancel).
  if (TERMINAL.includes(status) && !all[status] && updated && Object.keys(all).length) all[status] = updated;
  const entries = Object.entries(all)
    .map(([name, at]) => [name, new Date(at)])
    .sort((a, b) => a[1] - b[1]);
  if (!entries.length) return null;
  const finished = TERMINAL.includes(status);
  return h(
    "ol",
    { class: "timeline" },
    entries.map(([name, start], i) => {
      const next = entries[i + 1]?.[1];
      const running = !next && !finished;
      return h(
        "li",
        { dataset: { phase: name }, class: running ? "current" : null, "aria-current": running ? "step" : null },
        h("span", { class: "phase" }, name),
        h("time", { datetime: start.toISOString() }, start.toLocaleTimeString()),
        next ? h("span", { class: "took" }, seconds((next - start) / 1000)) : null,
        running ? h("span", { class: "took" }, "now") : null,
      );
    }),
  );
}

function taskGrid(tasks) {
  const done = tasks.filter((task) => task.status === "done").length;
  return [
    h("p", { class: "muted", id: "tasks-done" }, `${done} of ${tasks.length} tasks done`),
    h(
      "ol",
      { class: "tasks", "aria-label": "Tasks" },
      tasks.map((task) => {
        const made = task.rendition || (task.renditions || []).join(" + ");
        const name = [task.kind, task.chunk != null ? `chunk ${task.chunk}` : null, made]
          .filter((x) => x !== null && x !== undefined && x !== "")
          .join(" · ");
        const detail = task.status === "running" && task.progress ? ` ${Math.round(task.progress)} %`
          : task.status === "done" && task.seconds != null ? ` ${seconds(task.seconds)}` : "";
        return h(
          "li",
          {
            class: `task status-${task.status}`,
            title: `${name}: ${task.status}${task.error?.message ? ` (${task.error.message})` : ""}`,
            dataset: { status: task.status, kind: task.kind },
          },
          h("span", { class: "task-name" }, name),
          h("span", { class: "task-status" }, `${task.status}${detail}`),
        );
      }),
    ),
  ];
}

// A rendition's measured quality, as the CLI's quality column shows it; every figure in its title.
function qualityCell(measured) {
  if (!measured) return "";
  if (measured.status !== "ok") return h("span", { class: "quality-failed", title: measured.reason || "" }, `failed: ${measured.reason || "no reason given"}`);
  const parts = [];
  if (measured.vmaf) parts.push(`VMAF ${measured.vmaf.mean.toFixed(1)} (p5 ${measured.vmaf.p5.toFixed(1)})`);
  if (measured.psnr) parts.push(`PSNR ${measured.psnr.mean.toFixed(1)} dB`);
  if (measured.ssim) parts.push(`SSIM ${measured.ssim.mean.toFixed(4)}`);
  const detail = ["vmaf", "psnr", "ssim"]
    .filter((m) => measured[m])
    .map((m) => `${m}: mean ${measured[m].mean}, harmonic ${measured[m].harmonic_mean}, min ${measured[m].min}, p1 ${measured[m].p1}, p5 ${measured[m].p5}`)
    .concat([`${measured.frames} frames`]);
  return h("span", { class: "quality", title: detail.join("\n") }, parts.join(", "));
}

// One row per output, as `openencoder jobs outputs` prints it: name, kind, resolution,
// bitrate, size, duration, quality (when the job measured it) and its link. A folder (a
// rendition's segments, the numbered thumbnails) is one row: its files are listed by GET /api/jobs/:id/files, and the CLI's
// --download saves them all.
function outputsView(outputs, jobId) {
  const name = nameOf;
  const sorted = [...outputs].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
  const measured = outputs.some((o) => o.quality);
  const rows = sorted.map((output) => {
    const folder = !output.uri && output.count != null;
    const cells = [
      h("span", { class: "key" }, name(output)),
      folder ? `${output.kind} (${output.count})` : output.kind || "",
      output.width && output.height ? `${output.width}×${output.height}` : output.rendition || "",
      bitrate(output.bit_rate),
      bytes(output.size),
      output.duration ? seconds(output.duration) : "",
      output.url
        ? h("a", { href: output.url, download: name(output), rel: "noopener", "aria-label": `Download ${name(output)}` }, "Download")
        : folder
          ? h("span", { class: "muted", title: `openencoder jobs outputs ${jobId} --download DIR` }, "save with CLI --download")
          : "",
    ];
    if (measured) cells.splice(6, 0, qualityCell(output.quality));
    return cells;
  });
  const headers = ["Name", "Kind", "Resolution", "Bitrate", "Size", "Duration", "Link"];
  if (measured) headers.splice(6, 0, "Quality");
  const expiries = outputs.map((o) => o.url_expires).filter(Boolean).sort();
  // A ladder plays in the player section; a one-file job's MP4 plays here.
  const ladder = outputs.some((o) => name(o) === "master.m3u8");
  const preview = !ladder && sorted.find((o) => o.url && /\.mp4$/i.test(name(o)));
  return [
    table("Outputs", headers, rows),
    expiries.length ? h("p", { class: "muted" }, `Links valid until ${when(expiries[0])}.`) : null,
    preview
      ? h("video", { src: preview.url, controls: true, preload: "metadata", class: "preview", "aria-label": `Preview of ${name(preview)}` })
      : null,
  ];
}

export async function render(main, { ctx, session }, id) {
  const title = h("h1", null, `Job #${id}`);
  const actions = h("div", { class: "actions" });
  const problem = h("div");
  const summary = section("Summary", "job-summary");
  const plan = section("Plan", "job-plan");
  const tasks = section("Tasks", "job-tasks");
  const phases = section("Phases", "job-phases");
  const probe = section("Source", "job-probe");
  const outputs = section("Outputs", "job-outputs");
  const playing = section("Player", "job-player");
  const renditions = section("Renditions", "job-renditions");
  const ladder = section("Per-title ladder", "job-ladder");
  const failure = section("Error", "job-error");
  main.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")),
    h("div", { class: "page-head" }, title, actions),
    problem,
    summary.el,
    failure.el,
    playing.el,
    renditions.el,
    ladder.el,
    outputs.el,
    phases.el,
    plan.el,
    tasks.el,
    probe.el,
  );

  let job = null;
  let actionsFor = null;
  let variants = []; // the master playlist's, once the player has read it
  let stopPlayer = null;
  const act = async (verb) => {
    try {
      const answer = await api.post(`/jobs/${encodeURIComponent(id)}/${verb}`);
      notify(`Job #${job.id}: ${answer.job_status}`);
      await refresh();
    } catch (error) {
      notify(error.message, "error");
    }
  };

  // A ladder's rungs, or a measured job's video: a plain one-file job's outputs table says it all.
  function drawRenditions() {
    const rows = renditionsOf(job.outputs, variants);
    const worth = job.outputs?.some((o) => nameOf(o) === "master.m3u8" || o.quality);
    renditions.draw(rows.length && worth ? rows : null, () => [renditionsTable(rows), perFramePlots(rows, job.outputs, ctx.signal)]);
  }

  async function loadPlayer(holder, signal) {
    try {
      const links = await signedLinks(job.id, signal);
      const response = await fetch(links.get("master.m3u8"), { signal, credentials: "omit", cache: "no-store" });
      if (!response.ok) throw new Error(`storage answered ${response.status} for master.m3u8`);
      const master = await response.text();
      variants = parseMaster(master);
      clear(holder, player(job, links, variants, master, signal));
      drawRenditions(); // with what only the master playlist says (a ladder without MP4s)
    } catch (error) {
      if (error.name !== "AbortError") clear(holder, errorBox(error));
    }
  }

  async function refresh() {
    try {
      const answer = await api.get(`/jobs/${encodeURIComponent(id)}`, { signal: ctx.signal });
      job = answer.job || answer;
      clear(problem);
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(problem, errorBox(error));
      return;
    }
    title.textContent = `Job #${job.id}`;
    const finished = TERMINAL.includes(job.status);
    summary.draw(
      { status: job.status, progress: job.progress, preset: job.preset, source: job.source, dest: job.dest,
        owner: job.owner, attempt: job.attempt, speed: job.speed, fps: job.fps, created: job.created_date, updated: job.updated_date },
      (s) => [
        h("div", { class: "summary-line" }, badge(s.status), progressBar(s.progress, `Progress of job ${job.id}`)),
        dl([
          ["Preset", s.preset],
          ["Source", s.source],
          ["Destination", s.dest],
          ["Owner", s.owner],
          ["Attempt", s.attempt],
          ["Speed", s.speed],
          ["Frames per second", s.fps],
          ["Created", when(s.created)],
          ["Updated", when(s.updated)],
          ["Guid", job.guid],
        ]),
      ],
    );
    failure.draw(job.error, (e) => [
      h("p", { class: "notice error", id: "error-message" }, e.message),
      e.log ? h("details", { open: true }, h("summary", null, "ffmpeg output (last lines)"), h("pre", { class: "log" }, e.log)) : null,
    ]);
    outputs.draw(job.outputs?.length ? job.outputs.map(({ url_expires, ...o }) => ({ ...o, url: o.url?.split("?")[0] })) : null,
      () => outputsView(job.outputs, job.id));
    const ladderOut = finished && job.outputs?.some((o) => nameOf(o) === "master.m3u8");
    if (!ladderOut && stopPlayer) {
      stopPlayer.abort(); // restarted: the old attempt's player stops
      stopPlayer = null;
    }
    // Drawn again only when the outputs change (a restart), never for a new link's signature.
    playing.draw(ladderOut ? { id: job.id, attempt: job.attempt, outputs: job.outputs.map(nameOf) } : null, () => {
      stopPlayer?.abort();
      stopPlayer = new AbortController();
      const signal = AbortSignal.any([ctx.signal, stopPlayer.signal]);
      const holder = h("div", null, h("p", { class: "muted" }, "Loading the ladder…"));
      loadPlayer(holder, signal);
      return holder;
    });
    drawRenditions();
    ladder.draw(job.plan?.ladder ?? null, ladderView);
    phases.draw({ phases: job.phases, status: job.status }, () => timeline(job.phases, job.status, job.updated_date));
    const p = job.plan;
    const actual = job.cost?.actual;
    // The cost is part of what is drawn: it grows as tasks finish.
    plan.draw(p ? { ...p, actual: actual ?? null } : null, () => dl([
      ["Mode", p.mode],
      ["Chunks", p.chunks],
      ["Renditions", p.renditions],
      ["Tasks", p.tasks_total != null ? `${p.tasks_done ?? 0} of ${p.tasks_total} done` : null],
      ["Estimate", p.estimate ? `${seconds(p.estimate.seconds)}${p.estimate.cost_usd != null ? `, $${Number(p.estimate.cost_usd).toFixed(4)}` : ""}` : null],
      ["Actual cost", actual?.requests ? `$${Number(actual.usd).toFixed(4)} (${Number(actual.gb_seconds).toFixed(1)} GB-s, ${actual.requests} requests)` : null],
    ]));
    if (p && p.mode === "chunked") {
      try {
        const answer = await api.get(`/jobs/${encodeURIComponent(id)}/tasks`, { signal: ctx.signal });
        tasks.draw(answer.items, taskGrid);
      } catch (error) {
        if (error.name === "AbortError") return;
        tasks.draw(null); // no task route on this server: no grid
      }
    }
    probe.draw(job.probe, probeView);
    if (session.can("operator") && actionsFor !== job.status) {
      actionsFor = job.status;
      clear(
        actions,
        finished
          ? button("Restart", () => act("restart"), { kind: "primary", dataset: { action: "restart" } })
          : button("Cancel job", () => act("cancel"), { kind: "danger", dataset: { action: "cancel" } }),
      );
    }
  }

  await ctx.every(2000, refresh);
}
