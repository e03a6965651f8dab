// Account: change your password (required first when an admin forced a reset).

import * as api from "./api.js";
import { field, h, notify, setFieldError } from "./ui.js";

export const feature = ["post", "/update-password"];

export async function render(main, { session, signIn, go }) {
  const forced = Boolean(session.user?.mustChangePassword);
  const current = h("input", { type: "password", autocomplete: "current-password", required: true });
  const fresh = h("input", { type: "password", autocomplete: "new-password", required: true });
  const again = h("input", { type: "password", autocomplete: "new-password", required: true });
  const message = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "account-title" },
    h("h1", { id: "account-title" }, forced ? "Choose a new password" : "Change password"),
    forced ? h("p", { class: "notice", id: "reset-required" }, "An admin asks you to change your password before going on.") : null,
    field("Current password", current),
    field("New password", fresh),
    field("New password again", again),
    message,
    h("button", { type: "submit", class: "btn primary" }, "Change password"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const control of [current, fresh, again]) setFieldError(control, "");
    message.textContent = "";
    if (fresh.value !== again.value) {
      setFieldError(again, "the two new passwords differ");
      again.focus();
      return;
    }
    try {
      const answer = await api.post("/update-password", {
        current_password: current.value,
        new_password: fresh.value,
      });
      await signIn(answer.token);
      notify("Password changed");
      go("/jobs");
    } catch (error) {
      const target = /current/.test(error.message) || error.status === 401 ? current : /password/.test(error.message) ? fresh : null;
      if (target) setFieldError(target, error.message);
      else message.textContent = error.message;
    }
  });
  main.append(form);
  current.focus();
}
