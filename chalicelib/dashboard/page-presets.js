// Presets: the list for everyone; create, edit, activate and deactivate for operators.
// The server validates every preset; its message is shown beside the field it is about.

import * as api from "./api.js";
import { badge, button, clear, errorBox, field, h, notify, setFieldError, table } from "./ui.js";

const FIELDS = ["name", "description", "output", "data"];

// Which field a server message is about: pydantic names it; the domain's
// messages start with it; everything else is about the ffmpeg options in `data`.
export function fieldOf(message) {
  const named = /(?:^|unknown )field '(\w+)'/.exec(message);
  if (named && FIELDS.includes(named[1])) return named[1];
  if (/^name\b|preset named/.test(message)) return "name";
  if (/^output\b/.test(message)) return "output";
  if (/^description\b/.test(message)) return "description";
  return "data";
}

function presetForm(preset, { onSaved, onCancel }) {
  const editing = Boolean(preset);
  const controls = {
    name: h("input", { name: "name", required: true, value: preset?.name ?? "", autocomplete: "off" }),
    description: h("input", { name: "description", value: preset?.description ?? "" }),
    output: h("input", { name: "output", value: preset?.output ?? "", placeholder: "video.mp4" }),
    data: h("textarea", { name: "data", required: true, rows: "6", spellcheck: "false" }),
    active: h("input", { type: "checkbox", name: "active", checked: preset ? preset.active : true }),
  };
  controls.data.value = preset?.data ?? '{"raw": ["-c:v libx264", "-crf 23", "-c:a aac"]}';
  const message = h("p", { class: "form-error", role: "alert" });
  const save = h("button", { type: "submit", class: "btn primary" }, editing ? "Save preset" : "Create preset");
  const form = h(
    "form",
    { class: "card", id: "preset-form", "aria-labelledby": "preset-form-title" },
    h("h2", { id: "preset-form-title" }, editing ? `Edit ${preset.name}` : "New preset"),
    h(
      "div",
      { class: "form-grid" },
      field("Name", controls.name),
      field("Output file name", controls.output, { hint: "e.g. video.mp4; empty takes the server's default" }),
      field("Description", controls.description, { wide: true }),
      field("ffmpeg options (JSON)", controls.data, {
        wide: true,
        hint: '{"raw": ["-c:v libx264", ...]} or the structured {"format", "video", "audio", "filter"} form',
      }),
      h("div", { class: "field check" }, controls.active, h("label", { for: (controls.active.id = "preset-active") }, "Active")),
    ),
    message,
    h("div", { class: "actions" }, save, button("Cancel", onCancel)),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const name of FIELDS) setFieldError(controls[name], "");
    message.textContent = "";
    const body = {
      name: controls.name.value.trim(),
      description: controls.description.value,
      data: controls.data.value,
      active: controls.active.checked,
    };
    if (controls.output.value.trim()) body.output = controls.output.value.trim();
    save.disabled = true;
    try {
      const answer = editing ? await api.put(`/presets/${preset.id}`, body) : await api.post("/presets", body);
      notify(`Preset ${answer.preset.name} saved`);
      onSaved(answer.preset);
    } catch (error) {
      if (error.status === 400 || error.status === 409) {
        const name = fieldOf(error.message);
        setFieldError(controls[name], error.message);
        controls[name].focus();
      } else {
        message.textContent = error.message;
      }
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

export async function render(main, { session }) {
  const operator = session.can("operator");
  const formSlot = h("div");
  const list = h("div");
  const create = operator ? button("New preset", () => openForm(null), { kind: "primary" }) : null;
  main.append(
    h("div", { class: "page-head" }, h("h1", null, "Presets"), create),
    formSlot,
    list,
  );

  function openForm(preset) {
    const form = presetForm(preset, {
      onSaved: () => {
        clear(formSlot);
        load();
      },
      onCancel: () => clear(formSlot),
    });
    clear(formSlot, form);
    form.querySelector("input").focus();
  }

  async function toggle(preset) {
    try {
      await api.put(`/presets/${preset.id}`, { active: !preset.active });
      notify(`Preset ${preset.name} ${preset.active ? "deactivated" : "activated"}`);
      await load();
    } catch (error) {
      notify(error.message, "error");
    }
  }

  async function load() {
    let items;
    try {
      items = (await api.get("/presets")).items;
    } catch (error) {
      clear(list, errorBox(error));
      return;
    }
    const headers = ["Id", "Name", "Description", "Output", "State", "Options"];
    if (operator) headers.push("Actions");
    clear(
      list,
      table(
        "Presets",
        headers,
        items.map((preset) => {
          const cells = [
            String(preset.id),
            h("strong", null, preset.name),
            preset.description,
            preset.output,
            badge(preset.active ? "active" : "inactive"),
            h("details", null, h("summary", null, "ffmpeg options"), h("pre", { class: "log" }, preset.data)),
          ];
          if (operator) {
            cells.push(
              h(
                "div",
                { class: "actions" },
                button("Edit", () => openForm(preset), { kind: "small", label: `Edit ${preset.name}` }),
                button(preset.active ? "Deactivate" : "Activate", () => toggle(preset), {
                  kind: "small",
                  label: `${preset.active ? "Deactivate" : "Activate"} ${preset.name}`,
                }),
              ),
            );
          }
          return h("tr", { dataset: { preset: preset.name } }, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)));
        }),
        { empty: "No presets yet." },
      ),
    );
  }

  await load();
}
