// The room's macros: large buttons at the top of its panel, the running macro's progress, cancel.
//
// They are the actions of the virtual device `room` (DESIGN.md §10): each macro's button
// text is its schema's `title`; `cancel` stops the running one. What runs, its step and
// progress arrive as ordinary changes of the device's state: `running`, `step`, `steps`,
// `step_text`, `progress` (0..1), and `last_run` once it has ended.

import { h } from "./controls.js";

export const ROOM_DEVICE = "room";
const CANCEL = "cancel";

export class MacroBar {
  /**
   * @param {(device: string, action: string, args: object) => Promise<object>} send  the ack
   */
  constructor(send) {
    this.send = send;
    this.device = null;
    this.names = "";
    this.buttons = new Map();
    this.row = h("div", { class: "macro-buttons" });
    this.bar = h("progress", { class: "macro-progress", max: "1", "data-role": "macro-progress" });
    this.step = h("span", { class: "macro-step", "data-role": "macro-step" });
    this.cancel = h(
      "button",
      {
        type: "button",
        class: "btn cancel",
        "data-action": CANCEL,
        onclick: () => this.stop(),
      },
      "Cancel",
    );
    this.running = h("div", { class: "macro-running", "data-role": "macro-running" }, [
      h("div", { class: "macro-line" }, this.step, this.cancel),
      this.bar,
    ]);
    this.message = h("p", { class: "message", "data-role": "macro-message", "aria-live": "polite" });
    this.el = h(
      "section",
      { class: "macros", "data-device": ROOM_DEVICE, "aria-label": "Macros" },
      this.row,
      this.running,
      this.message,
    );
  }

  /** Show the `room` device ({name, state, actions}); rebuilds the buttons when macros change. */
  show(device) {
    this.device = device;
    const macros = Object.entries(device.actions).filter(([name]) => name !== CANCEL);
    const names = JSON.stringify(macros.map(([name, schema]) => [name, schema.title]));
    if (names !== this.names) {
      this.names = names;
      this.buttons.clear();
      for (const [name, schema] of macros) {
        const b = h(
          "button",
          { type: "button", class: "btn macro", "data-macro": name, onclick: () => this.run(name) },
          schema.title || name,
        );
        this.buttons.set(name, b);
      }
      this.row.replaceChildren(...this.buttons.values());
    }
    this.refresh();
  }

  /** Re-read the state after a change. */
  refresh() {
    const state = this.device.state;
    const running = state.running ?? null;
    this.el.dataset.running = running ?? "";
    for (const [name, b] of this.buttons) {
      b.disabled = running !== null && name !== running;
      b.setAttribute("aria-pressed", name === running ? "true" : "false");
      if (name === running) b.setAttribute("aria-busy", "true");
      else b.removeAttribute("aria-busy");
    }
    this.running.hidden = running === null;
    if (running !== null) {
      const title = this.buttons.get(running)?.textContent ?? running;
      const where = state.step ? `step ${state.step} of ${state.steps}: ${state.step_text}` : "";
      this.step.textContent = where ? `${title} · ${where}` : title;
      this.bar.value = typeof state.progress === "number" ? state.progress : 0;
      this.cancel.disabled = false;
      return;
    }
    const last = state.last_run;
    if (!last) return;
    const title = this.buttons.get(last.macro)?.textContent ?? last.macro;
    if (last.ok) this.say("done", `${title}: done`);
    else this.say("error", `${title}: ${last.error?.message ?? "failed"}`);
  }

  async run(name) {
    this.say("pending", "");
    const ack = await this.send(ROOM_DEVICE, name, {});
    if (!ack.ok && !("macro" in (ack.error ?? {}))) {
      // Refused before it ran (busy, no link): a run that ended shows through last_run.
      this.say("error", ack.error?.message || ack.error?.code || "refused");
    }
    return ack;
  }

  async stop() {
    this.cancel.disabled = true;
    return this.send(ROOM_DEVICE, CANCEL, {});
  }

  /** Drop an error message about a moment that has passed (the hub was away). */
  clearError() {
    if (this.message.dataset.state === "error") this.say("idle", "");
  }

  say(kind, text) {
    this.message.dataset.state = kind;
    this.message.textContent = text;
  }
}
