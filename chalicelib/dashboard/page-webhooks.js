// Webhooks: endpoints (create, activate, test, delete) and each one's delivery log.
// Shown only when the server has the webhooks API.

import * as api from "./api.js";
import { badge, button, clear, errorBox, field, h, notify, select, setFieldError, table, when } from "./ui.js";

export const feature = "/webhooks";
const EVENTS = ["job.completed", "job.failed", "job.cancelled", "job.progress"];

function createForm(onCreated) {
  const target = h("input", { id: "webhook-url", type: "url", required: true, placeholder: "https://example.com/hooks/openencoder" });
  const format = select([["standard", "Standard Webhooks (signed JSON)"], ["slack", "Slack incoming webhook"]], { id: "webhook-format" });
  const boxes = EVENTS.map((name) => {
    const box = h("input", { type: "checkbox", id: `event-${name.replace(".", "-")}`, value: name, checked: name !== "job.progress" });
    return [box, h("div", { class: "field check" }, box, h("label", { for: box.id }, name))];
  });
  const message = h("p", { class: "form-error", role: "alert" });
  const secret = h("div", { id: "webhook-secret", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "webhook-form-title" },
    h("h2", { id: "webhook-form-title" }, "New endpoint"),
    h("div", { class: "form-grid" }, field("Endpoint URL", target, { wide: true }), field("Format", format)),
    h("fieldset", { class: "events" }, h("legend", null, "Events"), boxes.map(([, el]) => el)),
    message,
    h("button", { type: "submit", class: "btn primary" }, "Add endpoint"),
    secret,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    setFieldError(target, "");
    try {
      const answer = await api.post("/webhooks", {
        url: target.value.trim(),
        events: boxes.filter(([box]) => box.checked).map(([box]) => box.value),
        active: true,
        format: format.value,
      });
      const hook = answer.webhook;
      clear(
        secret,
        hook.secret
          ? h("p", { class: "notice" }, "Signing secret (shown only now — keep it): ", h("code", { id: "secret-value" }, hook.secret))
          : null,
      );
      target.value = "";
      onCreated();
    } catch (error) {
      if (/url/i.test(error.message)) setFieldError(target, error.message);
      else message.textContent = error.message;
    }
  });
  return form;
}

async function deliveries(hook, slot, signal) {
  const answer = await api.get(`/webhooks/${encodeURIComponent(hook.id)}/deliveries`, { signal });
  clear(
    slot,
    h("h2", null, `Deliveries to ${hook.url}`),
    table(
      `Deliveries to ${hook.url}`,
      ["Event", "Attempt", "Answer", "Latency", "Next try", "At"],
      answer.items.map((d) =>
        h(
          "tr",
          { dataset: { delivery: d.id, event: d.event } },
          [
            d.event,
            String(d.attempt ?? ""),
            d.status_code ? badge(String(d.status_code)) : d.error || "no answer yet",
            d.latency_ms != null ? `${d.latency_ms} ms` : "",
            d.next_try ? when(d.next_try) : "",
            when(d.created),
          ].map((cell, i) => h("td", { "data-label": ["Event", "Attempt", "Answer", "Latency", "Next try", "At"][i] }, cell)),
        ),
      ),
      { empty: "Nothing delivered yet." },
    ),
  );
}

export async function render(main, { ctx }) {
  const list = h("div");
  const log = h("section", { class: "card", id: "deliveries", "aria-live": "polite" });
  log.hidden = true;
  main.append(h("div", { class: "page-head" }, h("h1", null, "Webhooks")), createForm(() => load()), list, log);

  // The open delivery log follows new attempts as they are made.
  let watched = null;
  const showLog = () =>
    watched &&
    deliveries(watched, log, ctx.signal).catch((error) => {
      if (error.name !== "AbortError") clear(log, errorBox(error));
    });

  const act = async (promise, done) => {
    try {
      await promise;
      notify(done);
    } catch (error) {
      notify(error.message, "error");
    }
    await load();
  };

  async function load() {
    let items;
    try {
      items = (await api.get("/webhooks")).items;
    } catch (error) {
      clear(list, errorBox(error));
      return;
    }
    const headers = ["Endpoint", "Events", "Format", "State", "Created", "Actions"];
    clear(
      list,
      table("Webhook endpoints", headers, items.map((hook) => {
        const path = `/webhooks/${encodeURIComponent(hook.id)}`;
        const cells = [
          h("span", { class: "key" }, hook.url),
          (hook.events || []).join(", "),
          hook.format || "standard",
          badge(hook.active ? "active" : "inactive"),
          when(hook.created),
          h(
            "div",
            { class: "actions" },
            button("Deliveries", () => {
              watched = hook;
              log.hidden = false;
              showLog();
            }, { kind: "small", label: `Deliveries to ${hook.url}` }),
            button("Send test", () => act(api.post(`${path}/test`), `Test sent to ${hook.url}`), { kind: "small", label: `Send a test to ${hook.url}` }),
            button(hook.active ? "Deactivate" : "Activate", () => act(api.put(path, { active: !hook.active }), `${hook.url} ${hook.active ? "deactivated" : "activated"}`), {
              kind: "small",
              label: `${hook.active ? "Deactivate" : "Activate"} ${hook.url}`,
            }),
            button("Delete", () => {
              if (window.confirm(`Delete the endpoint ${hook.url}?`)) act(api.del(path), `${hook.url} deleted`);
            }, { kind: "small", label: `Delete ${hook.url}` }),
          ),
        ];
        return h("tr", { dataset: { webhook: hook.id } }, cells.map((c, i) => h("td", { "data-label": headers[i] }, c)));
      }), { empty: "No endpoints yet." }),
    );
  }

  await load();
  await ctx.every(3000, showLog);
}
