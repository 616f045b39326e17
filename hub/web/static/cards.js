// One card per device: header with online status, controls, and the last command's outcome.

import { BUILDERS, TRANSITIONS, h, structure } from "./controls.js";

const OFFLINE_TEXT = {
  starting: "Connecting…",
  refused: "Offline: connection refused",
  timeout: "Offline: not answering",
  unreachable: "Offline: unreachable",
  closed: "Offline: connection closed",
  auth_failed: "Offline: login refused (check the password)",
  protocol_error: "Offline: speaks an unexpected protocol",
  port_gone: "Offline: serial port gone",
};
const DONE_SHOWN_MS = 2500;

/** The device with the actions it says it cannot do (`state.unavailable_actions`) left out. */
function usable(device) {
  const missing = new Set(device.state.unavailable_actions ?? []);
  if (!missing.size) return device;
  const actions = Object.fromEntries(
    Object.entries(device.actions).filter(([name]) => !missing.has(name)),
  );
  return { ...device, actions };
}

export class DeviceCard {
  /**
   * @param {string} id  device id
   * @param {(device: string, action: string, args: object) => Promise<object>} send  the ack
   */
  constructor(id, send) {
    this.id = id;
    this.send = send;
    this.shape = null;
    this.actions = null; // the action schemas the controls were built from
    this.sections = [];
    this.latest = 0;
    this.stale = false; // the hub cannot be reached: this is the last known state
    this.title = h("h2", {});
    this.status = h("span", { class: "status", "data-role": "status" });
    this.body = h("div", { class: "controls" });
    this.message = h("p", { class: "message", "data-role": "message", "aria-live": "polite" });
    this.el = h(
      "article",
      { class: "card", "data-device": id },
      h("header", {}, this.title, this.status),
      this.body,
      this.message,
    );
  }

  /** Show `device` ({name, driver, state, actions}); rebuilds controls only when needed. */
  show(device) {
    this.device = device;
    this.title.textContent = device.name || this.id;
    const shape = structure(device);
    if (shape !== this.shape || device.actions !== this.actions) {
      this.shape = shape;
      this.actions = device.actions;
      const ctx = { device: usable(this.device), run: (...args) => this.run(...args) };
      this.sections = BUILDERS.map((build) => build(ctx)).filter(Boolean);
      this.body.replaceChildren(...this.sections.map((s) => s.el));
      this.el.classList.toggle(
        "wide",
        this.sections.some((s) => s.wide),
      );
    }
    this.refresh();
  }

  /** Re-read the state after a change. */
  refresh() {
    const state = this.device.state;
    if (structure(this.device) !== this.shape) {
      this.show(this.device);
      return;
    }
    const online = state.online === true;
    this.el.classList.toggle("offline", !online);
    this.el.dataset.online = String(online);
    this.el.classList.toggle("stale", this.stale);
    if (this.stale) {
      this.status.textContent = "Not connected to the hub";
    } else {
      this.status.textContent = online
        ? "Online"
        : (OFFLINE_TEXT[state.offline_reason] ?? `Offline: ${state.offline_reason ?? "unknown"}`);
    }
    for (const s of this.sections) s.update(state);
  }

  /** While the panel is not in sync with the hub its state is the last known only. */
  setStale(stale) {
    if (this.stale === stale) return;
    this.stale = stale;
    this.refresh();
  }

  /** Drop an error message: it was about a moment that has passed (the hub was away). */
  clearError() {
    if (this.message.dataset.state === "error") this.say("idle", "");
  }

  /**
   * Send a command; shows pending, then done or the ack's error message.
   * `quiet` commands (slider moves, camera drive) only show errors.
   */
  async run(action, args, { button = null, label = action, quiet = false } = {}) {
    const mine = ++this.latest;
    if (button) button.setAttribute("aria-busy", "true");
    if (!quiet) this.say("pending", `${label}…`);
    const ack = await this.send(this.id, action, args);
    if (button) button.removeAttribute("aria-busy");
    if (!ack.ok) {
      this.say("error", ack.error?.message || ack.error?.code || "command failed");
    } else if (mine === this.latest && !quiet) {
      // Power commands are answered when the projector starts to warm up or cool down.
      const power = this.device?.state?.power;
      const moving = TRANSITIONS.has(power) && action.startsWith("power_");
      const going = power === "warming" ? "warming up" : "cooling down";
      this.say("done", moving ? `${label}: accepted, ${going}` : `${label}: done`);
      setTimeout(() => mine === this.latest && this.say("idle", ""), DONE_SHOWN_MS);
    }
    return ack;
  }

  say(kind, text) {
    this.message.dataset.state = kind;
    this.message.textContent = text;
  }
}
