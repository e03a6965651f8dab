// Jobs: newest first, live status and progress, a status filter, paging.

import * as api from "./api.js";
import { ACTIVE, badge, clear, errorBox, field, h, progressBar, select, when } from "./ui.js";

const PAGE_SIZE = 20;
const FILTERS = [
  ["", "All"],
  ["active", "Running"],
  ["queued", "Queued"],
  ["completed", "Completed"],
  ["error", "Failed"],
  ["cancelled", "Cancelled"],
];
// The API lists by id only; a filtered view walks back this many jobs at most.
const FILTER_SCAN = 1000;

function matches(filter, status) {
  if (!filter) return true;
  return filter === "active" ? ACTIVE.includes(status) : status === filter;
}

async function fetchPage(filter, page, signal) {
  if (!filter) {
    const answer = await api.get(`/jobs?count=${PAGE_SIZE}&page=${page}`, { signal });
    const pages = Math.max(1, Math.ceil((answer.count || 0) / PAGE_SIZE));
    return { items: answer.items, more: page < pages, total: answer.count, pages };
  }
  const wanted = page * PAGE_SIZE + 1;
  const found = [];
  let cursor = null;
  let scanned = 0;
  do {
    const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const answer = await api.get(`/jobs?count=100${query}`, { signal });
    scanned += answer.items.length;
    found.push(...answer.items.filter((job) => matches(filter, job.status)));
    cursor = answer.next;
  } while (cursor && found.length < wanted && scanned < FILTER_SCAN);
  return {
    items: found.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE),
    more: found.length >= wanted,
    scanned,
  };
}

function row(job) {
  return h(
    "tr",
    { dataset: { job: job.id } },
    h("td", { "data-label": "Job" }, h("a", { href: `#/jobs/${job.id}` }, `#${job.id}`)),
    h("td", { "data-label": "Preset" }, job.preset),
    h("td", { "data-label": "Status", class: "cell-status" }, badge(job.status)),
    h("td", { "data-label": "Progress", class: "cell-progress" }, progressBar(job.progress, `Progress of job ${job.id}`)),
    h("td", { "data-label": "Created" }, when(job.created_date)),
  );
}

export async function render(main, { ctx, session, params, go }) {
  const filter = FILTERS.some(([value]) => value === params.get("status")) ? params.get("status") : "";
  const page = Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1);
  const link = (changes) => {
    const next = new URLSearchParams({ status: filter, page: String(page), ...changes });
    if (!next.get("status")) next.delete("status");
    if (next.get("page") === "1") next.delete("page");
    return `/jobs${next.toString() ? `?${next}` : ""}`;
  };

  const chooser = select(FILTERS, { value: filter, id: "status-filter", name: "status" });
  chooser.addEventListener("change", () => go(link({ status: chooser.value, page: "1" })));
  const body = h("tbody");
  const list = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid", id: "jobs" },
      h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
      h(
        "thead",
        null,
        h("tr", null, ["Job", "Preset", "Status", "Progress", "Created"].map((t) => h("th", { scope: "col" }, t))),
      ),
      body,
    ),
  );
  const empty = h("p", { class: "empty", hidden: true }, "No jobs match.");
  // Totals by status, when the server keeps them (GET /api/stats).
  const counts = h("p", { class: "counts", id: "job-counts", "aria-live": "off" });
  const showCounts = async () => {
    if (!session.has("get", "/stats")) return;
    const { jobs = {} } = await api.get("/stats", { signal: ctx.signal });
    clear(
      counts,
      Object.entries(jobs)
        .filter(([name, n]) => n && name !== "total")
        .map(([name, n]) => h("span", { class: `badge status-${name}`, dataset: { count: name } }, `${name} ${n}`)),
      jobs.total !== undefined ? h("span", { class: "muted" }, ` ${jobs.total} in all`) : null,
    );
  };
  const problem = h("div");
  const older = h("a", { class: "btn", href: `#${link({ page: String(page + 1) })}`, rel: "next" }, "Older");
  const newer = h("a", { class: "btn", href: `#${link({ page: String(page - 1) })}`, rel: "prev" }, "Newer");
  const where = h("span", { class: "page-label", "aria-live": "polite" });
  main.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Jobs"),
      session.can("operator") ? h("a", { class: "btn primary", href: "#/new" }, "New job") : null,
    ),
    h("div", { class: "toolbar" }, field("Status", chooser), counts),
    problem,
    list,
    empty,
    h("nav", { class: "pager", "aria-label": "Pages" }, newer, where, older),
  );

  let shown = "";
  await ctx.every(2000, async () => {
    let result;
    try {
      result = await fetchPage(filter, page, ctx.signal);
      clear(problem);
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(problem, errorBox(error));
      return;
    }
    showCounts().catch(() => clear(counts));
    const ids = result.items.map((job) => job.id).join(",");
    if (ids !== shown) {
      // A different set of jobs: rebuild. Otherwise update rows in place, so
      // keyboard focus on a link survives the refresh.
      clear(body, result.items.map(row));
      shown = ids;
    } else {
      for (const job of result.items) {
        const tr = body.querySelector(`tr[data-job="${job.id}"]`);
        const cell = tr.querySelector(".cell-status");
        if (cell.firstChild.dataset.status !== job.status) clear(cell, badge(job.status));
        const bar = tr.querySelector("progress");
        if (Number(bar.value) !== Number(job.progress)) {
          clear(tr.querySelector(".cell-progress"), progressBar(job.progress, `Progress of job ${job.id}`));
        }
      }
    }
    empty.hidden = result.items.length > 0;
    list.hidden = result.items.length === 0;
    newer.hidden = page <= 1;
    older.hidden = !result.more;
    where.textContent = result.pages ? `Page ${page} of ${result.pages}` : `Page ${page}`;
  });
}
