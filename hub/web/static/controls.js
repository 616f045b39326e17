// Device controls built from the state vocabulary (DESIGN.md §5) and the action schemas.
//
// Each builder takes a context {device: {state, actions}, run(action, args, options)} and
// returns null when the device lacks the capability, or {el, update(state), wide?}.
// Conventions the builders rely on, all from the snapshot:
//   power            state.power + power_on / power_off; buttons lock while warming/cooling
//   input            state.input, choices from state.inputs (list of names, or {code: name})
//                    or the select_input schema's enum
//   set_<key> {b}    any action with exactly one boolean arg is a toggle of state[<key>]
//                    (set_video_mute, set_audio_mute, set_freeze, ...)
//   levels/mutes     state.levels {control: dB or %} with set_level {control, level};
//                    the range comes from state.controls[control].{min,max}, else the
//                    level schema (minimum/maximum), else -100..20 dB or 0..100 %;
//                    the name from state.controls[control].label or a named output
//   routes           state.routes {output: input|null} with route {input, output};
//                    inputs from the input schema (enum or a small integer range), else
//                    1..state.size.inputs, else state.inputs, else the inputs seen in
//                    routes; output not required means an "All" row. Named inputs and
//                    outputs (state.inputs / state.outputs {number: name}) show their
//                    names and are sent by name
//   presets          recall_preset {preset}: choices from state.presets, the schema's enum or
//                    a small integer range; state.preset is highlighted
//   camera           pan_tilt {pan, tilt} (signed speeds: +pan right, +tilt up) and
//                    zoom {speed} (+ in, - out) while a button is held, `stop` on release;
//                    speed is half the schema's maximum

import { throttle } from "./commands.js";

const SLIDER_INTERVAL_MS = 100; // at most ~10 level commands a second while dragging

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

export const humanize = (key) => {
  const text = String(key).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
};

const naturally = (a, b) => String(a).localeCompare(String(b), undefined, { numeric: true });
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const MAX_BUTTONS = 32;
const WIDE_GRID = 6; // a routing grid with more inputs asks for a double-width card

/** The non-null branch of an `X | None` schema. */
export function nonNull(schema) {
  if (schema && Array.isArray(schema.anyOf)) {
    return schema.anyOf.find((s) => s.type !== "null") || {};
  }
  return schema || {};
}

const allowsNull = (schema) =>
  Boolean(schema && Array.isArray(schema.anyOf) && schema.anyOf.some((s) => s.type === "null"));

export function argSchema(actionSchema, name) {
  return (actionSchema && actionSchema.properties && actionSchema.properties[name]) || null;
}

/** Allowed values of a schema as a list: its enum, or a small integer range; else null. */
export function choicesOf(schema) {
  const s = nonNull(schema);
  if (Array.isArray(s.enum)) return s.enum.filter((v) => v !== null);
  if (s.const !== undefined) return [s.const];
  if (s.type === "integer") {
    const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : null);
    const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : null);
    if (Number.isInteger(lo) && Number.isInteger(hi) && hi >= lo && hi - lo < MAX_BUTTONS) {
      return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
    }
  }
  return null;
}

/** A value as the schema's type wants it (keys of state dicts are always strings). */
export function coerce(schema, value) {
  const s = nonNull(schema);
  if (value === null) return null;
  if (s.type === "integer" || s.type === "number") {
    const n = Number(value);
    return Number.isNaN(n) ? value : n;
  }
  if (s.type === "string") return String(value);
  return value;
}

/** Choices from a state key that is a list of names or a {value: name} map. */
function listed(value) {
  if (Array.isArray(value)) return value.map((v) => ({ value: v, label: String(v) }));
  if (isObject(value)) {
    return Object.keys(value)
      .sort(naturally)
      .map((k) => ({ value: k, label: String(value[k]) }));
  }
  return null;
}

function button(label, onclick, extra = {}) {
  return h("button", { type: "button", class: "btn", onclick, ...extra }, label);
}

function setPressed(el, pressed) {
  el.setAttribute("aria-pressed", pressed ? "true" : "false");
}

function section(title, ...children) {
  return h("section", { class: "control" }, title ? h("h3", {}, title) : null, ...children);
}

// ---- power ----------------------------------------------------------------------------

const POWER_TEXT = {
  on: "On",
  off: "Off",
  warming: "Warming up…",
  cooling: "Cooling down…",
};
export const TRANSITIONS = new Set(["warming", "cooling"]);

function power({ device, run }) {
  const { actions, state } = device;
  if (!actions.power_on && !actions.power_off && !("power" in state)) return null;
  const pill = h("span", { class: "power-state", "data-role": "power-state" });
  const buttons = [];
  const on = actions.power_on
    ? button("On", () => run("power_on", {}, { button: on, label: "Power on" }), {
        "data-action": "power_on",
      })
    : null;
  const off = actions.power_off
    ? button("Off", () => run("power_off", {}, { button: off, label: "Power off" }), {
        "data-action": "power_off",
      })
    : null;
  if (on) buttons.push(on);
  if (off) buttons.push(off);
  const el = section("Power", h("div", { class: "row" }, pill, ...buttons));
  return {
    el,
    update(state) {
      const value = state.power ?? "unknown";
      pill.textContent = POWER_TEXT[value] ?? humanize(value);
      pill.dataset.power = value;
      const locked = !state.online || TRANSITIONS.has(value);
      for (const b of buttons) b.disabled = locked;
      if (on) setPressed(on, value === "on");
      if (off) setPressed(off, value === "off");
    },
  };
}

// ---- input select -----------------------------------------------------------------------

function inputs({ device, run }) {
  const { actions, state } = device;
  if (!actions.select_input) return null;
  const schema = argSchema(actions.select_input, "input");
  const options =
    listed(state.inputs)?.map((o) => ({ value: o.label, label: o.label })) ??
    choicesOf(schema)?.map((v) => ({ value: v, label: String(v) }));
  if (!options || !options.length) return null;
  const buttons = options.map((o) => {
    const b = button(
      o.label,
      () => run("select_input", { input: coerce(schema, o.value) }, { button: b, label: o.label }),
      { "data-input": o.value },
    );
    b.dataset.value = String(o.value);
    return b;
  });
  return {
    el: section("Input", h("div", { class: "row wrap" }, buttons)),
    update(state) {
      const locked = !state.online || TRANSITIONS.has(state.power);
      for (const b of buttons) {
        b.disabled = locked;
        setPressed(b, String(state.input) === b.dataset.value);
      }
    },
  };
}

// ---- boolean toggles: set_<key> {<bool>} -------------------------------------------------

/** Actions `set_<key>` taking exactly one boolean: [{action, key, arg}]. */
export function toggleActions(actions) {
  const found = [];
  for (const [name, schema] of Object.entries(actions)) {
    if (!name.startsWith("set_") || name === "set_mute" || name === "set_level") continue;
    const props = Object.entries((schema && schema.properties) || {});
    if (props.length === 1 && nonNull(props[0][1]).type === "boolean") {
      found.push({ action: name, key: name.slice(4), arg: props[0][0] });
    }
  }
  return found;
}

function toggles({ device, run }) {
  const found = toggleActions(device.actions);
  if (!found.length) return null;
  const items = found.map((t) => {
    const b = button(humanize(t.key), () => {
      const next = device.state[t.key] !== true;
      run(t.action, { [t.arg]: next }, { button: b, label: humanize(t.key) });
    });
    b.dataset.toggle = t.key;
    return { ...t, b };
  });
  return {
    el: section(
      null,
      h(
        "div",
        { class: "row wrap" },
        items.map((i) => i.b),
      ),
    ),
    update(state) {
      for (const i of items) {
        i.b.disabled = !state.online;
        setPressed(i.b, state[i.key] === true);
      }
    },
  };
}

// ---- levels and mutes -------------------------------------------------------------------

/**
 * A control's slider range: state.controls[name].{min,max} when the driver publishes
 * per-control ranges, else the level schema's minimum/maximum, else by unit (the schema
 * description or the values): dB -100..20, % 0..100.
 */
function levelRange(actions, state, name) {
  const s = nonNull(argSchema(actions.set_level, "level"));
  const own =
    isObject(state.controls) && isObject(state.controls[name]) ? state.controls[name] : {};
  const text = `${s.description ?? ""} ${actions.set_level?.description ?? ""}`;
  const values = isObject(state.levels) ? Object.values(state.levels) : [];
  const negative = values.some((v) => typeof v === "number" && v < 0);
  const decibels = /\bdB\b/.test(text) || (!/%|percent/i.test(text) && negative);
  const min = own.min ?? s.minimum ?? s.exclusiveMinimum ?? (decibels ? -100 : 0);
  const max = own.max ?? s.maximum ?? s.exclusiveMaximum ?? (decibels ? 20 : 100);
  const step = s.multipleOf ?? (s.type === "integer" ? 1 : decibels ? 0.5 : 1);
  return { min, max, step, unit: decibels || min < 0 ? "dB" : "%" };
}

function formatLevel(value, unit) {
  if (typeof value !== "number") return "—";
  const text = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${text} ${unit}`;
}

function levels({ device, run }) {
  const { actions, state } = device;
  const levelMap = actions.set_level && isObject(state.levels) ? state.levels : {};
  const muteMap = actions.set_mute && isObject(state.mutes) ? state.mutes : {};
  const names = [...new Set([...Object.keys(levelMap), ...Object.keys(muteMap)])].sort(naturally);
  if (!names.length) return null;
  const levelControl = argSchema(actions.set_level, "control");
  // Numbered controls are a switcher's outputs when the schema says so ("output number").
  const outputs = /output/i.test(
    nonNull(levelControl ?? argSchema(actions.set_mute, "control")).description ?? "",
  );
  const own = (name) => (isObject(state.controls) ? state.controls[name] : null);
  const outputNames = isObject(state.outputs) ? state.outputs : {};
  const levelLabel = (name) =>
    (isObject(own(name)) && own(name).label) ||
    (outputs && /^\d+$/.test(name) ? (outputNames[name] ?? `Out ${name}`) : humanize(name));
  const muteControl = argSchema(actions.set_mute, "control");
  const rows = names.map((name) => levelRow(name, name in levelMap, name in muteMap));

  function levelRow(name, hasLevel, hasMute) {
    const range = levelRange(actions, state, name);
    const row = { name, dragging: false, inflight: 0 };
    row.busy = () => row.dragging || row.inflight > 0;
    const label = h("span", { class: "level-name" }, levelLabel(name));
    row.value = h("output", { class: "level-value" });
    if (hasLevel) {
      row.slider = h("input", {
        type: "range",
        class: "slider",
        min: range.min,
        max: range.max,
        step: range.step,
        "aria-label": `${levelLabel(name)} level`,
        "data-level": name,
      });
      // While the finger is down or a level is on its way, device echoes of older levels
      // would make the thumb jump; once both are over it shows the device's level again.
      const settle = () => !row.busy() && row.refresh(device.state);
      const send = (level) => {
        row.inflight += 1;
        const args = { control: coerce(levelControl, name), level };
        run("set_level", args, { quiet: true }).finally(() => {
          row.inflight -= 1;
          settle();
        });
      };
      row.throttle = throttle(send, SLIDER_INTERVAL_MS);
      row.slider.addEventListener("input", () => {
        row.dragging = true;
        const level = Number(row.slider.value);
        row.value.textContent = formatLevel(level, range.unit);
        row.throttle.push(level);
      });
      row.slider.addEventListener("change", () => {
        row.throttle.flush(Number(row.slider.value));
        row.dragging = false;
        settle();
      });
    }
    if (hasMute) {
      row.mute = button(
        "Mute",
        () =>
          run(
            "set_mute",
            { control: coerce(muteControl, name), mute: device.state.mutes?.[name] !== true },
            { button: row.mute, label: `${levelLabel(name)} mute` },
          ),
        { "data-mute": name, class: "btn mute" },
      );
    }
    row.el = h(
      "div",
      { class: "level-row", "data-control": name },
      label,
      row.slider,
      row.value,
      row.mute,
    );
    row.refresh = (state) => {
      const level = isObject(state.levels) ? state.levels[name] : undefined;
      if (row.slider) {
        row.slider.disabled = !state.online;
        if (!row.busy()) {
          if (typeof level === "number") row.slider.value = String(level);
          row.value.textContent = formatLevel(level, range.unit);
        }
      }
      if (row.mute) {
        row.mute.disabled = !state.online;
        setPressed(row.mute, isObject(state.mutes) && state.mutes[name] === true);
      }
    };
    return row;
  }

  return {
    el: section(
      "Levels",
      rows.map((r) => r.el),
    ),
    update(state) {
      for (const r of rows) r.refresh(state);
    },
  };
}

// ---- matrix routing -----------------------------------------------------------------------

function routeInputs(actions, state) {
  const schema = argSchema(actions.route, "input");
  const allowed = choicesOf(schema);
  const names = isObject(state.inputs) ? state.inputs : {};
  let values = allowed;
  const count = isObject(state.size) ? state.size.inputs : undefined;
  if (!values && Number.isInteger(count) && count > 0 && count <= MAX_BUTTONS) {
    values = Array.from({ length: count }, (_, i) => i + 1);
  }
  if (!values && isObject(state.inputs)) values = Object.keys(state.inputs);
  if (!values) {
    const seen = Object.values(state.routes).filter((v) => v !== null && v !== undefined);
    values = [...new Set(seen.map(String))];
  }
  values = [...values].sort(naturally);
  const untie = allowsNull(schema) ? null : values.find((v) => String(v) === "0");
  const options = values
    .filter((v) => String(v) !== "0")
    .map((v) => ({ value: v, label: String(names[v] ?? v) }));
  if (untie !== undefined) options.push({ value: untie, label: "Off" });
  return options;
}

function routes({ device, run }) {
  const { actions, state } = device;
  if (!actions.route || !isObject(state.routes)) return null;
  const outputs = Object.keys(state.routes).sort(naturally);
  const inputSchema = argSchema(actions.route, "input");
  const outputSchema = argSchema(actions.route, "output");
  const options = routeInputs(actions, state);
  if (!outputs.length || !options.length) return null;
  const toAll = !(actions.route.required || []).includes("output");
  const inputNames = isObject(state.inputs) ? state.inputs : {};
  const outputNames = isObject(state.outputs) ? state.outputs : {};
  const cells = [];
  const grid = h("div", { class: "route-grid", role: "grid" });
  grid.style.setProperty("--columns", String(options.length));
  grid.classList.toggle("named", Object.keys(inputNames).length > 0);
  const addRow = (output) => {
    const title =
      output === null
        ? "All"
        : (outputNames[output] ?? (/^\d+$/.test(output) ? `Out ${output}` : humanize(output)));
    grid.append(h("span", { class: "route-output", "data-row": output ?? "*" }, title));
    for (const option of options) {
      // Named ports are sent by name, as a person would say them.
      const args = { input: inputNames[option.value] ?? coerce(inputSchema, option.value) };
      if (output !== null) args.output = outputNames[output] ?? coerce(outputSchema, output);
      const where = output === null ? "all outputs" : title;
      const b = button(
        option.label,
        () => run("route", args, { button: b, label: `${option.label} → ${where}` }),
        { "data-output": output ?? "*", "data-input": option.value ?? "none", class: "btn cell" },
      );
      cells.push({ b, output, value: option.value });
      grid.append(b);
    }
  };
  for (const output of outputs) addRow(output);
  if (toAll) addRow(null);
  return {
    el: section("Routing", h("div", { class: "route-scroll" }, grid)),
    wide: options.length > WIDE_GRID,
    update(state) {
      for (const { b, output, value } of cells) {
        b.disabled = !state.online;
        if (output === null) continue;
        const tied = isObject(state.routes) ? state.routes[output] : undefined;
        const pressed =
          value === null || String(value) === "0"
            ? tied === null || String(tied) === "0"
            : tied !== null && tied !== undefined && String(tied) === String(value);
        setPressed(b, pressed);
      }
    },
  };
}

// ---- presets ---------------------------------------------------------------------------------

function presets({ device, run }) {
  const { actions, state } = device;
  if (!actions.recall_preset) return null;
  const schema = argSchema(actions.recall_preset, "preset");
  const options =
    listed(state.presets) ?? choicesOf(schema)?.map((v) => ({ value: v, label: String(v) }));
  const recall = (value, b, name = `Preset ${value}`) =>
    run("recall_preset", { preset: coerce(schema, value) }, { button: b, label: name });
  if (!options) {
    const field = h("input", {
      type: "number",
      class: "preset-entry",
      inputmode: "numeric",
      "aria-label": "Preset number",
      placeholder: "No.",
    });
    const go = button("Recall", () => field.value !== "" && recall(field.value, go));
    return {
      el: section("Presets", h("div", { class: "row" }, field, go)),
      update(state) {
        go.disabled = !state.online;
      },
    };
  }
  const buttons = options.map((o) => {
    const b = button(o.label, () => recall(o.value, b, o.label), { "data-preset": o.value });
    return b;
  });
  return {
    el: section("Presets", h("div", { class: "row wrap" }, buttons)),
    update(state) {
      for (const b of buttons) {
        b.disabled = !state.online;
        setPressed(b, state.preset !== undefined && String(state.preset) === b.dataset.preset);
      }
    },
  };
}

// ---- camera: hold to move ---------------------------------------------------------------------

/** A button that runs `start` when pressed and `stop` when released, cancelled or lost. */
function holdButton(label, attrs, start, stop) {
  const b = button(label, null, attrs);
  let held = false;
  const begin = () => {
    if (held || b.disabled) return;
    held = true;
    b.classList.add("held");
    start();
  };
  const end = () => {
    if (!held) return;
    held = false;
    b.classList.remove("held");
    stop();
  };
  b.addEventListener("pointerdown", (event) => {
    b.setPointerCapture?.(event.pointerId);
    begin();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    b.addEventListener(type, end);
  }
  b.addEventListener(
    "keydown",
    (e) => (e.key === " " || e.key === "Enter") && !e.repeat && begin(),
  );
  b.addEventListener("keyup", (e) => (e.key === " " || e.key === "Enter") && end());
  b.addEventListener("blur", end);
  b.addEventListener("contextmenu", (e) => e.preventDefault()); // long press on touch screens
  return b;
}

// Speeds when the schema gives no maximum (drivers clamp to what the device takes).
const DEFAULT_DRIVE_SPEED = 8;
const DEFAULT_ZOOM_SPEED = 4;

function speedOf(schema, fallback) {
  const s = nonNull(schema);
  const max = s.maximum ?? s.exclusiveMaximum;
  if (typeof max !== "number") return fallback;
  const half = max / 2;
  return s.type === "integer" ? Math.max(1, Math.round(half)) : half;
}

const DIRECTIONS = [
  ["↖", -1, 1],
  ["↑", 0, 1],
  ["↗", 1, 1],
  ["←", -1, 0],
  null,
  ["→", 1, 0],
  ["↙", -1, -1],
  ["↓", 0, -1],
  ["↘", 1, -1],
];

function camera({ device, run }) {
  const { actions } = device;
  if (!actions.pan_tilt && !actions.zoom) return null;
  const buttons = [];
  const halt = (fallback) =>
    actions.stop ? run("stop", {}, { quiet: true }) : run(...fallback, { quiet: true });
  const parts = [];
  if (actions.pan_tilt) {
    const panSchema = argSchema(actions.pan_tilt, "pan");
    const tiltSchema = argSchema(actions.pan_tilt, "tilt");
    const pan = speedOf(panSchema, DEFAULT_DRIVE_SPEED);
    const tilt = speedOf(tiltSchema, DEFAULT_DRIVE_SPEED);
    const pad = h("div", { class: "dpad" });
    for (const cell of DIRECTIONS) {
      if (cell === null) {
        pad.append(h("span"));
        continue;
      }
      const [arrow, x, y] = cell;
      const b = holdButton(
        arrow,
        { "data-move": `${x},${y}`, "aria-label": `move ${arrow}` },
        () =>
          run(
            "pan_tilt",
            { pan: coerce(panSchema, x * pan), tilt: coerce(tiltSchema, y * tilt) },
            { quiet: true, button: b },
          ),
        () => halt(["pan_tilt", { pan: 0, tilt: 0 }]),
      );
      buttons.push(b);
      pad.append(b);
    }
    parts.push(pad);
  }
  if (actions.zoom) {
    const schema = argSchema(actions.zoom, "speed");
    const speed = speedOf(schema, DEFAULT_ZOOM_SPEED);
    const zoom = h("div", { class: "zoom" });
    for (const [label, sign] of [
      ["Zoom +", 1],
      ["Zoom −", -1],
    ]) {
      const b = holdButton(
        label,
        { "data-zoom": sign > 0 ? "in" : "out" },
        () => run("zoom", { speed: coerce(schema, sign * speed) }, { quiet: true, button: b }),
        () => halt(["zoom", { speed: 0 }]),
      );
      buttons.push(b);
      zoom.append(b);
    }
    parts.push(zoom);
  }
  return {
    el: section("Camera", h("div", { class: "row camera" }, parts)),
    update(state) {
      for (const b of buttons) b.disabled = !state.online;
    },
  };
}

// ---- anything else --------------------------------------------------------------------------

const HANDLED = new Set(["power_on", "power_off", "stop"]);

function extras({ device, run }) {
  const names = Object.entries(device.actions)
    .filter(([name, schema]) => {
      const props = (schema && schema.properties) || {};
      return !HANDLED.has(name) && Object.keys(props).length === 0;
    })
    .map(([name]) => name)
    .sort(naturally);
  if (!names.length) return null;
  const buttons = names.map((name) => {
    const b = button(humanize(name), () => run(name, {}, { button: b, label: humanize(name) }), {
      "data-action": name,
      class: "btn small",
    });
    return b;
  });
  return {
    el: section("More", h("div", { class: "row wrap" }, buttons)),
    update(state) {
      for (const b of buttons) b.disabled = !state.online;
    },
  };
}

function info() {
  const line = h("p", { class: "info", "data-role": "info" });
  return {
    el: line,
    update(state) {
      const parts = [];
      const model = [state.manufacturer, state.model].filter(Boolean).join(" ");
      if (model) parts.push(model);
      if (typeof state.lamp_hours === "number") parts.push(`lamp ${state.lamp_hours} h`);
      if (isObject(state.errors)) {
        const bad = Object.entries(state.errors).filter(([, v]) => v && v !== "ok");
        for (const [what, level] of bad) parts.push(`⚠ ${what}: ${level}`);
      }
      line.textContent = parts.join(" · ");
      line.hidden = parts.length === 0;
    },
  };
}

export const BUILDERS = [power, inputs, routes, toggles, levels, presets, camera, extras, info];

/** State keys whose presence or shape decides which controls a card has. */
export function structure(device) {
  const { state, actions } = device;
  const keys = (v) => (isObject(v) ? Object.keys(v).sort() : null);
  return JSON.stringify({
    actions: Object.keys(actions).sort(),
    unavailable: state.unavailable_actions ?? null,
    power: "power" in state,
    inputs: state.inputs ?? null,
    outputs: state.outputs ?? null, // named switcher outputs
    levels: keys(state.levels),
    mutes: keys(state.mutes),
    routes: keys(state.routes),
    presets: state.presets ?? null,
    controls: state.controls ?? null, // per-control level ranges
    size: state.size ?? null, // matrix size
  });
}
