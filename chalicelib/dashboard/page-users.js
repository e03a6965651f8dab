// Users (admin): change a role, activate or deactivate an account.

import * as api from "./api.js";
import { badge, button, clear, errorBox, h, notify, select, table, when } from "./ui.js";

const ROLES = [
  ["guest", "guest"],
  ["operator", "operator"],
  ["admin", "admin"],
];

export async function render(main, { session }) {
  // Servers that support forced resets say so in their schema.
  const canForce = Boolean(session.schemas.UserUpdate?.properties?.force_password_reset);
  const list = h("div");
  main.append(h("div", { class: "page-head" }, h("h1", null, "Users")), list);

  async function change(user, body, what) {
    try {
      await api.put(`/users/${encodeURIComponent(user.username)}`, body);
      notify(`${user.username}: ${what}`);
    } catch (error) {
      notify(error.message, "error");
    }
    await load();
  }

  async function load() {
    let items;
    try {
      items = (await api.get("/users")).items;
    } catch (error) {
      clear(list, errorBox(error));
      return;
    }
    const headers = ["User", "Role", "State", "Created", "Actions"];
    clear(
      list,
      table(
        "Users",
        headers,
        items.map((user) => {
          const role = select(ROLES, { value: user.role, id: `role-${user.username}` });
          role.setAttribute("aria-label", `Role of ${user.username}`);
          role.addEventListener("change", () => change(user, { role: role.value }, `role ${role.value}`));
          const cells = [
            h("strong", null, user.username, user.username === session.user.username ? " (you)" : ""),
            role,
            badge(user.active ? "active" : "inactive"),
            when(user.created_date),
            h(
              "div",
              { class: "actions" },
              button(user.active ? "Deactivate" : "Activate",
                () => change(user, { active: !user.active }, user.active ? "deactivated" : "activated"),
                { kind: "small", label: `${user.active ? "Deactivate" : "Activate"} ${user.username}` }),
              canForce && !user.force_password_reset
                ? button("Require a new password", () => change(user, { force_password_reset: true }, "must change password"),
                  { kind: "small", label: `Require a new password from ${user.username}` })
                : null,
            ),
          ];
          if (user.force_password_reset) cells[2] = [cells[2], " ", badge("must change password")];
          return h("tr", { dataset: { user: user.username } }, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)));
        }),
      ),
    );
  }

  await load();
}
