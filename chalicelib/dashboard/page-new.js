// New job: drop (or choose) a file, upload it straight to storage through the
// uploads API with a progress bar, pick a preset, submit, land on the job.

import * as api from "./api.js";
import { bytes, clear, field, h, progressBar, select, setFieldError } from "./ui.js";

function stamp() {
  return new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}

function stem(name) {
  return name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "job";
}

export async function render(main, { ctx, session, go }) {
  const canUpload = session.has("post", "/uploads");
  const presets = (await api.get("/presets", { signal: ctx.signal })).items.filter((p) => p.active);
  const preset = select(presets.map((p) => [p.name, p.description && p.description !== p.name ? `${p.name} — ${p.description}` : p.name]), {
    id: "job-preset",
    value: presets[0]?.name,
  });
  const source = h("input", { id: "job-source", name: "source", placeholder: "s3:///path/to/source.mp4", autocomplete: "off" });
  const dest = h("input", { id: "job-dest", name: "dest", value: `s3:///outputs/job-${stamp()}/`, autocomplete: "off", required: true });
  // Servers with webhooks let a job name its own endpoint for its end.
  const notify = session.schemas.JobCreate?.properties?.notify_url
    ? h("input", { id: "job-notify", name: "notify_url", type: "url", autocomplete: "off", placeholder: "https://example.com/hooks/job-done" })
    : null;
  // How the server may run it (job graph): split into parallel chunks, and speed or cost.
  const jobFields = session.schemas.JobCreate?.properties || {};
  const parallel = jobFields.parallel
    ? select([["auto", "Split into parallel chunks when it helps"], ["off", "One encode, never split"]], { id: "job-parallel", value: "auto" })
    : null;
  const priority = jobFields.priority
    ? select([["speed", "Speed (Lambda)"], ["cost", "Cost (the droplet pool)"]], { id: "job-priority", value: "speed" })
    : null;
  let destEdited = false;
  dest.addEventListener("input", () => (destEdited = true));

  let uploaded = null; // the completed upload, once the bytes are in storage
  let uploading = null; // AbortController of the upload under way
  const status = h("div", { class: "upload-status", id: "upload-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn primary" }, "Start encoding");
  const message = h("p", { class: "form-error", role: "alert" });

  async function send(file) {
    if (uploading) uploading.abort();
    uploaded = null;
    const controller = new AbortController();
    uploading = controller;
    source.value = "";
    if (!destEdited) dest.value = `s3:///outputs/${stem(file.name)}-${stamp()}/`;
    const bar = h("span", { class: "upload-progress" }, progressBar(0, `Upload of ${file.name}`));
    clear(status, h("p", null, `Uploading ${file.name} (${bytes(file.size)})`), bar);
    submit.disabled = true;
    try {
      const result = await api.upload(file, (fraction) => {
        clear(bar, progressBar(Math.floor(fraction * 1000) / 10, `Upload of ${file.name}`));
      }, controller.signal);
      if (uploading !== controller) return;
      uploaded = result;
      clear(bar, progressBar(100, `Upload of ${file.name}`));
      status.firstChild.textContent = `Uploaded ${file.name} (${bytes(file.size)})`;
      status.dataset.state = "uploaded";
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(status, h("p", { class: "notice error", role: "alert" }, `Upload failed: ${error.message}`));
    } finally {
      if (uploading === controller) {
        uploading = null;
        submit.disabled = false;
      }
    }
  }

  let drop = null;
  if (canUpload) {
    const picker = h("input", { type: "file", id: "job-file", accept: "video/*,audio/*" });
    picker.addEventListener("change", () => picker.files[0] && send(picker.files[0]));
    drop = h(
      "div",
      { class: "drop", id: "drop-zone" },
      h("p", null, h("strong", null, "Drop a video here"), " or choose one:"),
      h("label", { for: picker.id, class: "visually-hidden" }, "Video file to upload"),
      picker,
      status,
    );
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const file = event.dataTransfer?.files?.[0];
      if (file) send(file);
    });
  }

  const form = h(
    "form",
    { class: "card", id: "new-job", "aria-labelledby": "new-job-title" },
    h("h1", { id: "new-job-title" }, "New job"),
    drop,
    field(canUpload ? "Or a source already in storage" : "Source", source, {
      hint: "s3://bucket/key, s3:///key (the input bucket) or a key",
    }),
    field("Preset", preset),
    field("Destination", dest, { hint: "outputs are written under this prefix of the output bucket" }),
    notify ? field("Notify URL (optional)", notify, { hint: "told when this job completes, fails or is cancelled" }) : null,
    parallel ? field("Parallel encoding", parallel) : null,
    priority ? field("Priority", priority) : null,
    message,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    setFieldError(source, "");
    setFieldError(dest, "");
    const from = source.value.trim() || (uploaded ? `upload:${uploaded.id}` : "");
    if (!from) {
      setFieldError(source, canUpload ? "drop a file or name a source" : "name a source");
      return;
    }
    submit.disabled = true;
    try {
      const body = { preset: preset.value, source: from, dest: dest.value.trim() };
      if (notify?.value.trim()) body.notify_url = notify.value.trim();
      if (parallel) body.parallel = parallel.value;
      if (priority) body.priority = priority.value;
      const answer = await api.post("/jobs", body);
      go(`/jobs/${answer.job.id}`);
    } catch (error) {
      const target = /notify/.test(error.message) ? notify
        : /dest/.test(error.message) ? dest
        : /source|upload/.test(error.message) ? source : null;
      if (target) setFieldError(target, error.message);
      else message.textContent = error.message;
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
}
