// The dashboard shell: session, navigation by role, the status header and a
// hash router (one served page, so the API needs only /dashboard and its assets).

import * as api from "./api.js";
import { button, clear, errorBox, h } from "./ui.js";
import * as login from "./page-login.js";
import * as jobs from "./page-jobs.js";
import * as job from "./page-job.js";
import * as newJob from "./page-new.js";
import * as presets from "./page-presets.js";
import * as machines from "./page-machines.js";
import * as users from "./page-users.js";
import * as webhooks from "./page-webhooks.js";
import * as account from "./page-account.js";

const RANK = { guest: 0, operator: 1, admin: 2 };

// [pattern, page module, nav label, least role]
const ROUTES = [
  [/^\/login$/, login, null, null],
  [/^\/jobs$/, jobs, "Jobs", "guest"],
  [/^\/jobs\/([0-9a-v]{1,20})$/, job, null, "guest"],
  [/^\/new$/, newJob, "New job", "operator"],
  [/^\/presets$/, presets, "Presets", "guest"],
  [/^\/machines$/, machines, "Machines", "operator"],
  [/^\/webhooks$/, webhooks, "Webhooks", "operator"],
  [/^\/users$/, users, "Users", "admin"],
  [/^\/account$/, account, null, "guest"],
];

// Who is logged in, and what this server offers (read from its OpenAPI document).
export const session = {
  user: null,
  can(role) {
    return Boolean(this.user) && RANK[this.user.role] >= RANK[role];
  },
  paths: {},
  schemas: {},
  has(method, path) {
    return Boolean(this.paths[`/api${path}`]?.[method.toLowerCase()]);
  },
};

// One page's lifetime: its timers and requests end when the user navigates away.
class PageContext {
  constructor() {
    this.controller = new AbortController();
    this.timers = new Set();
  }

  get signal() {
    return this.controller.signal;
  }

  get alive() {
    return !this.controller.signal.aborted;
  }

  // Run `task` now and then every `ms` (one run at a time; paused while the tab is hidden).
  every(ms, task) {
    const tick = async () => {
      if (!this.alive) return;
      if (!document.hidden) {
        try {
          await task();
        } catch (error) {
          if (error.name !== "AbortError") console.warn("refresh failed:", error.message);
        }
      }
      if (this.alive) this.timers.add(setTimeout(tick, ms));
    };
    return tick();
  }

  dispose() {
    this.controller.abort();
    for (const timer of this.timers) clearTimeout(timer);
  }
}

let current = null;

export function go(path) {
  if (location.hash === `#${path}`) render();
  else location.hash = `#${path}`;
}

async function loadSession() {
  if (!api.token()) {
    session.user = null;
    return;
  }
  try {
    session.user = (await api.get("/me")).user;
  } catch (error) {
    session.user = null;
    if (error.status === 403 && /change your password/.test(error.message)) {
      // An admin forced a reset: the token is good for changing the password only.
      const claims = tokenClaims(api.token()) || {};
      session.user = { username: claims.sub, role: claims.role || "guest", mustChangePassword: true };
      return;
    }
    if (error.status !== 401) throw error;
    api.setToken(null);
  }
}

// What this server offers, from its OpenAPI document: pages and sections for
// routes a server does not have yet (webhooks, uploads, task grids) stay hidden.
async function loadFeatures() {
  try {
    const doc = await api.get("/openapi.json");
    session.paths = doc.paths || {};
    session.schemas = doc.components?.schemas || {};
  } catch {
    session.paths = {};
    session.schemas = {};
  }
}

// Trade the token for a fresh one five minutes before it expires, when the
// server offers that (POST /api/refresh-token); otherwise the user logs in again.
let refreshTimer = null;

// The JWT's claims, read only to time the refresh and to name a user mid-reset
// (the server checks the signature; the page never trusts these for access).
function tokenClaims(value) {
  try {
    const payload = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const value = api.token();
  if (!value || !session.has("post", "/refresh-token")) return;
  const claims = tokenClaims(value);
  if (!claims?.exp) return;
  const expires = claims.exp * 1000;
  const wait = Math.max(10000, expires - Date.now() - 5 * 60 * 1000);
  refreshTimer = setTimeout(async () => {
    try {
      api.setToken((await api.post("/refresh-token")).token);
      scheduleRefresh();
    } catch (error) {
      console.warn("token refresh failed:", error.message);
    }
  }, wait);
}

export async function signIn(tokenValue) {
  api.setToken(tokenValue);
  await loadSession();
  drawChrome();
  scheduleRefresh();
}

function signOut(reason) {
  clearTimeout(refreshTimer);
  api.setToken(null);
  session.user = null;
  drawChrome();
  go(reason ? `/login?${new URLSearchParams({ reason })}` : "/login");
}

// A page for a route the server may lack names it as `feature`: a GET path, or [method, path].
function offered(module) {
  if (!module.feature) return true;
  const [method, path] = Array.isArray(module.feature) ? module.feature : ["get", module.feature];
  return session.has(method, path);
}

function visible(route) {
  const [, module, label, role] = route;
  if (!label || !session.can(role) || session.user.mustChangePassword) return false;
  return offered(module);
}

function drawChrome() {
  const nav = document.getElementById("nav");
  const here = location.hash.slice(1).split("?")[0];
  clear(
    nav,
    session.user
      ? h(
          "ul",
          null,
          ROUTES.filter(visible).map(([pattern, , label]) => {
            const path = pattern.source.replace(/^\^\\?|\$$/g, "").replace(/\\\//g, "/");
            const active = here === path || (path === "/jobs" && here.startsWith("/jobs/"));
            return h(
              "li",
              null,
              h("a", { href: `#${path}`, "aria-current": active ? "page" : null }, label),
            );
          }),
        )
      : null,
  );
  const box = document.getElementById("session");
  clear(
    box,
    session.user
      ? [
          h(
            "span",
            { class: "who" },
            offered(account)
              ? h("a", { href: "#/account", title: "Your account: change password" }, session.user.username)
              : session.user.username,
            " ",
            h("span", { class: "role", dataset: { role: session.user.role } }, session.user.role),
          ),
          button("Log out", () => signOut(), { kind: "quiet" }),
        ]
      : null,
  );
  statusHeader();
}

// Queue depths and health, refreshed in the background on every page.
let statusTimer = null;
let statusRun = 0;

async function statusHeader() {
  // Each navigation restarts the refresh; an older run still in flight then stops.
  const run = ++statusRun;
  clearTimeout(statusTimer);
  const box = document.getElementById("status");
  if (!session.user) {
    clear(box);
    return;
  }
  const parts = [];
  try {
    const health = await api.get("/health");
    const ok = health.message === "ok" || health.status === 200;
    parts.push(h("span", { class: `pill ${ok ? "ok" : "bad"}`, id: "health" }, ok ? "API ok" : "API degraded"));
  } catch (error) {
    // 503 says which table, queue or bucket does not answer.
    parts.push(h("span", { class: "pill bad", id: "health", title: error.message }, "API degraded"));
  }
  if (session.can("operator") && !session.user.mustChangePassword && session.has("get", "/worker/queue")) {
    try {
      const { queues } = await api.get("/worker/queue");
      for (const queue of queues || []) {
        const name = String(queue.name).replace(/^openencoder-[^-]+-/, "");
        const dead = name.endsWith("-dlq");
        if (dead && !queue.depth) continue; // a dead-letter queue matters only when it holds something
        parts.push(
          h(
            "span",
            {
              class: dead ? "pill bad" : "pill",
              dataset: { queue: name },
              title: `${queue.depth} waiting, ${queue.in_flight ?? 0} in flight`,
            },
            `${name}: ${queue.depth}`,
            queue.in_flight ? ` (+${queue.in_flight})` : "",
          ),
        );
      }
    } catch {
      // No queue route on this server (or not allowed): the header shows health only.
    }
  }
  if (run !== statusRun) return;
  clear(box, parts);
  statusTimer = setTimeout(statusHeader, 10000);
}

async function render() {
  const [path, query = ""] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query);
  if (current) current.dispose();
  current = new PageContext();
  const main = document.getElementById("main");
  if (!session.user && path !== "/login") {
    go("/login");
    return;
  }
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  const allowed = (r) => (!r[3] || session.can(r[3])) && offered(r[1]);
  if (!route || !allowed(route)) {
    go(session.user ? "/jobs" : "/login");
    return;
  }
  if (session.user?.mustChangePassword && path !== "/account") {
    go("/account");
    return;
  }
  if (path === "/login" && session.user) {
    go("/jobs");
    return;
  }
  const [pattern, module] = route;
  const args = path.match(pattern).slice(1);
  drawChrome();
  clear(main);
  // A new page starts reading at its content (a page may then focus a control of its own).
  main.focus({ preventScroll: true });
  try {
    await module.render(main, { ctx: current, session, params, go, signIn }, ...args);
  } catch (error) {
    if (error.name === "AbortError") return;
    console.error(error);
    main.append(errorBox(error));
  }
  document.title = `${main.querySelector("h1")?.textContent || "Open Encoder"} · Open Encoder`;
}

api.onUnauthorized((message) => signOut(message));
window.addEventListener("hashchange", render);

async function start() {
  try {
    await Promise.all([loadSession(), loadFeatures()]);
  } catch (error) {
    clear(document.getElementById("main"), errorBox(error));
    return;
  }
  drawChrome();
  scheduleRefresh();
  if (!location.hash) location.replace("#/jobs");
  await render();
  document.body.dataset.ready = "true";
}

start();
