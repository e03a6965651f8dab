// DOM building blocks. Text always goes in as text nodes (never innerHTML), so
// whatever the API returns (file names, error tails) cannot inject markup.

let serial = 0;

export function uid(prefix = "f") {
  serial += 1;
  return `${prefix}-${serial}`;
}

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "style") throw new Error("no inline styles: the CSP refuses them; use a class");
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A labelled control with a place for the server's message about it.
export function field(label, control, { hint, wide } = {}) {
  if (!control.id) control.id = uid("field");
  const error = h("p", { class: "field-error", id: `${control.id}-error`, role: "alert" });
  control.setAttribute("aria-describedby", error.id);
  return h(
    "div",
    { class: wide ? "field wide" : "field" },
    h("label", { for: control.id }, label),
    control,
    hint ? h("p", { class: "hint" }, hint) : null,
    error,
  );
}

export function setFieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (error) error.textContent = message || "";
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

export function select(options, { value, id, name } = {}) {
  return h(
    "select",
    { id, name },
    options.map(([optionValue, text]) =>
      h("option", { value: optionValue, selected: optionValue === value }, text),
    ),
  );
}

export function button(text, onclick, { kind = "", type = "button", label, dataset } = {}) {
  return h(
    "button",
    { type, class: `btn ${kind}`.trim(), onclick, "aria-label": label, dataset },
    text,
  );
}

export const ACTIVE = ["downloading", "probing", "encoding", "uploading", "restarting"];
export const TERMINAL = ["completed", "error", "cancelled"];

export function badge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, status);
}

export function progressBar(value, label) {
  const percent = Math.max(0, Math.min(100, Number(value) || 0));
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: "100", value: String(percent), "aria-label": label }),
    h("span", { class: "progress-text" }, `${percent.toFixed(percent % 1 ? 1 : 0)} %`),
  );
}

export function bytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function when(date) {
  if (!date) return "";
  const d = new Date(date);
  return Number.isNaN(d.getTime()) ? String(date) : d.toLocaleString();
}

export function seconds(value) {
  if (value === undefined || value === null || value === "") return "";
  const s = Number(value);
  if (!Number.isFinite(s)) return String(value);
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// A short-lived message for the whole page, announced to screen readers.
export function notify(message, kind = "info") {
  const region = document.getElementById("notices") || document.body.appendChild(
    h("div", { id: "notices", class: "notices", "aria-live": "polite" }),
  );
  const note = h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  region.append(note);
  setTimeout(() => note.remove(), 6000);
}

export function errorBox(error) {
  return h("p", { class: "notice error", role: "alert" }, error.message || String(error));
}

export function dl(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(([, value]) => value !== undefined && value !== null && value !== "")
      .map(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
  );
}

export function table(caption, headers, rows, { empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", null, h("tr", null, headers.map((text) => h("th", { scope: "col" }, text)))),
      h(
        "tbody",
        null,
        rows.map((cells) =>
          cells instanceof Node
            ? cells
            : h("tr", null, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell))),
        ),
      ),
    ),
  );
}
