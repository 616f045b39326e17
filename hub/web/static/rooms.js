// The room list at /: one big link per room, from GET /api/rooms.

import { h } from "./controls.js";

const list = document.querySelector("#rooms");
const problem = document.querySelector("#rooms-error");

try {
  const response = await fetch("/api/rooms");
  if (!response.ok) throw new Error(`the hub answered ${response.status}`);
  const { rooms } = await response.json();
  list.replaceChildren(
    ...rooms.map((room) =>
      h(
        "li",
        {},
        h(
          "a",
          { class: "btn room", href: room.panel, "data-room": room.id },
          h("span", { class: "room-name" }, room.name),
          h(
            "span",
            { class: "room-meta" },
            `${room.devices} device${room.devices === 1 ? "" : "s"}`,
            room.token_required ? " · 🔒 token" : "",
          ),
        ),
      ),
    ),
  );
} catch (err) {
  problem.hidden = false;
  problem.textContent = `Cannot load the rooms: ${err.message}`;
}
