// Machines: DigitalOcean droplets with status and cost, create and delete,
// the workers' heartbeats and the autoscaler's settings (admin, when the server has them).

import * as api from "./api.js";
import { badge, button, clear, errorBox, field, h, notify, select, setFieldError, table, when } from "./ui.js";

const money = (n, digits = 4) => (n === undefined || n === null ? "" : `$${Number(n).toFixed(digits)}`);

function createForm(regions, sizes, onCreated) {
  const usable = regions.filter((r) => r.available !== false);
  const region = select(usable.map((r) => [r.slug, `${r.name} (${r.slug})`]), { id: "machine-region" });
  const size = h("select", { id: "machine-size" });
  const count = h("input", { id: "machine-count", type: "number", min: "1", max: "10", value: "1", required: true });
  // Sizes offered in the chosen region only, with their price.
  const fillSizes = () => {
    const here = new Set(usable.find((r) => r.slug === region.value)?.sizes || []);
    clear(
      size,
      sizes
        .filter((s) => s.available !== false && (!here.size || here.has(s.slug)))
        .map((s) => h("option", { value: s.slug }, `${s.slug} · ${money(s.price_hourly, 3)}/h · ${money(s.price_monthly, 0)}/mo`)),
    );
  };
  region.addEventListener("change", fillSizes);
  fillSizes();
  const submit = h("button", { type: "submit", class: "btn primary" }, "Create droplets");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "create-machines-title" },
    h("h2", { id: "create-machines-title" }, "Create droplets"),
    h("div", { class: "form-grid" }, field("Region", region), field("Size", size), field("How many", count)),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setFieldError(count, "");
    submit.disabled = true;
    try {
      const answer = await api.post("/machines", {
        provider: "digitalocean",
        region: region.value,
        size: size.value,
        count: Number(count.value),
      });
      notify(`Created ${answer.machine.length} droplet(s)`);
      onCreated();
    } catch (error) {
      const target = /region/.test(error.message) ? region : /size/.test(error.message) ? size : count;
      setFieldError(target, error.message);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// The admin's runtime settings, whatever the server lists: numbers, flags and
// text; secrets are write-only ("set" / "not set") and sent only when typed.
function settingsForm(settings, onSaved, choices = {}) {
  const controls = {};
  const { overridden = [], ...knobs } = settings;
  const fields = Object.entries(knobs).map(([name, value]) => {
    const label = name.replace(/_/g, " ");
    let control;
    if (typeof value === "boolean") {
      control = h("input", { type: "checkbox", checked: value, id: `setting-${name}` });
      controls[name] = () => control.checked;
      return h("div", { class: "field check" }, control, h("label", { for: control.id }, label));
    }
    if (value === "set" || value === "not set") {
      control = h("input", { type: "password", id: `setting-${name}`, autocomplete: "off", placeholder: value });
      controls[name] = () => control.value || undefined;
      return field(`${label} (write-only)`, control, { hint: `currently ${value}; leave empty to keep` });
    }
    if (choices[name]?.length) {
      // Region and size as DigitalOcean lists them (the current value kept if it is not).
      const options = choices[name].some(([slug]) => slug === value) ? choices[name] : [[value, value], ...choices[name]];
      control = select(options, { value, id: `setting-${name}` });
      controls[name] = () => control.value;
    } else if (Array.isArray(value)) {
      control = h("input", { id: `setting-${name}`, value: value.join(", ") });
      controls[name] = () => control.value.split(",").map((v) => v.trim()).filter(Boolean);
    } else if (typeof value === "number") {
      control = h("input", { type: "number", step: "any", id: `setting-${name}`, value: String(value) });
      controls[name] = () => Number(control.value);
    } else if (value === null || typeof value !== "object") {
      control = h("input", { id: `setting-${name}`, value: value ?? "" });
      controls[name] = () => control.value;
    } else {
      return null; // nested objects are shown by the API, not edited here
    }
    return field(label, control);
  });
  const message = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "card", id: "settings-form", "aria-labelledby": "settings-title" },
    h("h2", { id: "settings-title" }, "Autoscaler and runtime settings"),
    h("p", { class: "hint" }, overridden.length ? `Changed from the stage's defaults: ${overridden.join(", ")}. ` : "",
      "Changes take effect within a minute, without a deploy."),
    h("div", { class: "form-grid" }, fields),
    message,
    h("button", { type: "submit", class: "btn primary" }, "Save settings"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const body = {};
    for (const [name, read] of Object.entries(controls)) {
      const value = read();
      if (value !== undefined && JSON.stringify(value) !== JSON.stringify(settings[name])) body[name] = value;
    }
    try {
      await api.put("/settings", body);
      notify("Settings saved");
      onSaved();
    } catch (error) {
      const name = Object.keys(controls).find((n) => error.message.includes(n));
      const control = name && document.getElementById(`setting-${name}`);
      if (control) setFieldError(control, error.message);
      else message.textContent = error.message;
    }
  });
  return form;
}

export async function render(main, { ctx, session }) {
  const summary = h("div", { class: "toolbar", id: "machines-cost" });
  const list = h("div");
  const workers = h("div");
  const formSlot = h("div");
  const settingsSlot = h("div");
  const deleteAll = button("Delete all droplets", async () => {
    if (!window.confirm("Delete every droplet tagged openencoder?")) return;
    try {
      await api.del("/machines");
      notify("All droplets deleted");
      await load();
    } catch (error) {
      notify(error.message, "error");
    }
  }, { kind: "danger" });
  main.append(
    h("div", { class: "page-head" }, h("h1", null, "Machines"), deleteAll),
    summary,
    list,
    formSlot,
    workers,
    settingsSlot,
  );

  let prices = {};
  const choices = {};
  async function load() {
    try {
      const [machines, pricing] = await Promise.all([api.get("/machines", { signal: ctx.signal }), api.get("/machines/pricing", { signal: ctx.signal })]);
      clear(
        summary,
        h("p", null, h("strong", null, `${pricing.count} droplet(s)`), ` · ${money(pricing.price_hourly)}/h · ${money(pricing.price_monthly, 2)}/month`),
      );
      const headers = ["Droplet", "Status", "Region", "Size", "Cost", "Created", "Actions"];
      clear(
        list,
        table("Droplets", headers, machines.machines.map((m) => {
          const cells = [
            h("span", null, h("strong", null, m.name), h("span", { class: "muted" }, ` #${m.id}`)),
            badge(m.status),
            m.region?.slug ?? m.region,
            m.size_slug,
            prices[m.size_slug] ? `${money(prices[m.size_slug], 3)}/h` : "",
            when(m.created_at),
            button("Delete", async () => {
              if (!window.confirm(`Delete droplet ${m.name}?`)) return;
              try {
                await api.del(`/machines/${m.id}`);
                notify(`Droplet ${m.name} deleted`);
              } catch (error) {
                notify(error.message, "error");
              }
              await load();
            }, { kind: "small", label: `Delete droplet ${m.name}` }),
          ];
          return h("tr", { dataset: { machine: m.id } }, cells.map((c, i) => h("td", { "data-label": headers[i] }, c)));
        }), { empty: "No droplets are running." }),
      );
      deleteAll.hidden = machines.machines.length === 0;
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(list, errorBox(error));
      deleteAll.hidden = true;
    }
    if (session.has("get", "/worker/pools")) {
      try {
        const pools = await api.get("/worker/pools", { signal: ctx.signal });
        const headers = ["Worker", "Droplet", "State", "Job", "Last seen"];
        clear(workers, h("section", { class: "card", "aria-labelledby": "workers-title" },
          h("h2", { id: "workers-title" }, "Workers"),
          table("Workers", headers, pools.items.map((w) => [
            w.worker_id, w.droplet_id ?? "", badge(w.state), w.job_id ?? "",
            w.last_seen ? when(typeof w.last_seen === "number" ? w.last_seen * 1000 : w.last_seen) : "",
          ]), { empty: "No worker has reported." })));
      } catch (error) {
        if (error.name !== "AbortError") clear(workers, errorBox(error));
      }
    }
  }

  try {
    const [regions, sizes] = await Promise.all([api.get("/machines/regions"), api.get("/machines/sizes")]);
    prices = Object.fromEntries(sizes.sizes.map((s) => [s.slug, s.price_hourly]));
    choices.droplet_region = regions.regions.map((r) => [r.slug, `${r.name} (${r.slug})`]);
    choices.droplet_size = sizes.sizes.map((s) => [s.slug, s.slug]);
    clear(formSlot, createForm(regions.regions, sizes.sizes, load));
  } catch (error) {
    clear(formSlot, errorBox(error));
  }

  async function loadSettings() {
    try {
      const answer = await api.get("/settings");
      clear(settingsSlot, settingsForm(answer.settings || answer, loadSettings, choices));
    } catch (error) {
      clear(settingsSlot, errorBox(error));
    }
  }
  if (session.can("admin") && session.has("get", "/settings")) await loadSettings();
  await ctx.every(10000, load);
}
