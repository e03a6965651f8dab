// Log in: POST /api/login, keep the token for this tab only.

import * as api from "./api.js";
import { field, h } from "./ui.js";

export async function render(main, { params, go, signIn }) {
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const message = h("p", { class: "form-error", role: "alert", id: "login-error" });
  if (params.get("reason")) message.textContent = params.get("reason");
  const submit = h("button", { type: "submit", class: "btn primary" }, "Log in");
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    field("Username", username),
    field("Password", password),
    message,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    message.textContent = "";
    try {
      const answer = await api.post("/login", {
        username: username.value,
        password: password.value,
      });
      await signIn(answer.token);
      go("/jobs");
    } catch (error) {
      message.textContent = error.message;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  username.focus();
}
