// The panel algorithm of DESIGN.md §3, without any DOM.
//
// Keeps (epoch, seq, devices). A snapshot loads wholesale; a change applies only when its
// epoch matches and seq == last + 1; changes that come early wait; a gap or an unknown
// epoch calls `sync` and applies its answer. `resumeAuth()` is what a reconnect sends.
// A snapshot can also come while connected, with the same epoch and seq, when a reload of
// the hub's deployment changed the room's devices or name: it loads the same way, and
// `onReset` redraws the device list in place.
//
// Devices are kept as the hub sends them: `actions` maps each action name to a schema id,
// and `schemas` holds the schemas by id. Ids name content, so the schemas stay valid across
// reconnects and hub restarts: `heldSchemas()` goes in the connect auth (and in `sync`) and
// the hub sends only the schemas the panel lacks (a redraw's snapshot only those of added
// devices). `view(id)` is a device with its schemas.

export class RoomSync {
  /**
   * @param {object} hooks
   * @param {(event: string, data: object) => Promise<object>} hooks.call  ack-returning emit
   * @param {() => boolean} hooks.connected  whether a sync can be sent now
   * @param {() => void} [hooks.onReset]  after a snapshot replaced everything
   * @param {(device: string, state: object) => void} [hooks.onApply]  after one change
   * @param {(device: string) => void} [hooks.onDescribe]  after a device's actions changed
   * @param {() => void} [hooks.onStatus]  after anything that may change `inSync`
   */
  constructor({
    call,
    connected,
    onReset = () => {},
    onApply = () => {},
    onDescribe = () => {},
    onStatus = () => {},
  }) {
    this.call = call;
    this.connected = connected;
    this.onReset = onReset;
    this.onApply = onApply;
    this.onDescribe = onDescribe;
    this.onStatus = onStatus;
    this.epoch = null;
    this.seq = -1;
    this.room = null;
    this.devices = {};
    this.schemas = {}; // action schema id → JSON Schema
    this.views = new Map(); // device id → {ids, actions}: resolved while its ids stay the same
    this.askedAll = false; // a snapshot with every schema was asked for since the last complete one
    this.early = new Map();
    this.syncing = false;
    this.stats = { snapshots: 0, applied: 0, syncs: 0, duplicates: 0 };
  }

  /** True once loaded, with nothing held back and no sync outstanding. */
  get inSync() {
    return this.epoch !== null && this.early.size === 0 && !this.syncing;
  }

  /** The `resume` part of the connect auth, or null before the first snapshot. */
  resumeAuth() {
    return this.epoch === null ? null : { epoch: this.epoch, seq: this.seq };
  }

  /** What `restore` takes back: enough to resume after a page reload. */
  saved() {
    if (this.epoch === null) return null;
    return { epoch: this.epoch, seq: this.seq, room: this.room, devices: this.devices };
  }

  restore(saved) {
    if (!saved || typeof saved.epoch !== "string" || !Number.isInteger(saved.seq)) return false;
    this.epoch = saved.epoch;
    this.seq = saved.seq;
    this.room = saved.room;
    this.devices = saved.devices || {};
    if (!this.complete()) {
      this.epoch = null; // schemas it names are gone: start afresh with a snapshot
      this.seq = -1;
      this.devices = {};
      return false;
    }
    this.onReset();
    this.onStatus();
    return true;
  }

  /** Ids of the action schemas held: the hub leaves them out of snapshots. */
  heldSchemas() {
    return Object.keys(this.schemas);
  }

  /** The schemas the devices use now, by id (what is worth keeping for the next visit). */
  usedSchemas() {
    const used = {};
    for (const device of Object.values(this.devices)) {
      for (const id of Object.values(device.actions || {})) {
        if (typeof id === "string" && id in this.schemas) used[id] = this.schemas[id];
      }
    }
    return used;
  }

  /** True when every action of every device has its schema. */
  complete() {
    return Object.values(this.devices).every((device) =>
      Object.values(device.actions || {}).every((id) => typeof id !== "string" || id in this.schemas),
    );
  }

  /** The device `{name, driver, state, actions}` with each action's schema instead of its id. */
  view(id) {
    const device = this.devices[id];
    if (!device) return null;
    const ids = JSON.stringify(device.actions || {});
    let resolved = this.views.get(id);
    if (!resolved || resolved.ids !== ids) {
      const actions = {};
      for (const [name, ref] of Object.entries(device.actions || {})) {
        const schema = typeof ref === "string" ? this.schemas[ref] : ref;
        if (schema) actions[name] = schema;
      }
      resolved = { ids, actions };
      this.views.set(id, resolved);
    }
    return { name: device.name, driver: device.driver, state: device.state, actions: resolved.actions };
  }

  loadSnapshot(snapshot) {
    this.stats.snapshots += 1;
    Object.assign(this.schemas, snapshot.schemas || {});
    this.epoch = snapshot.epoch;
    this.seq = snapshot.seq;
    this.room = snapshot.room;
    this.devices = structuredClone(snapshot.devices);
    for (const [seq, change] of this.early) {
      if (seq <= this.seq || change.epoch !== this.epoch) this.early.delete(seq);
    }
    this.onReset();
    this.drain();
    this.onStatus();
    if (this.complete()) {
      this.askedAll = false;
    } else {
      this.requestSchemas();
    }
  }

  receiveChange(change) {
    if (change.epoch !== this.epoch) {
      this.requestSync();
      return;
    }
    if (change.seq <= this.seq) {
      this.stats.duplicates += 1;
      return;
    }
    this.early.set(change.seq, change);
    this.drain();
    if (this.early.size) this.requestSync();
    this.onStatus();
  }

  drain() {
    while (this.early.has(this.seq + 1)) {
      const change = this.early.get(this.seq + 1);
      this.early.delete(this.seq + 1);
      this.apply(change);
    }
  }

  apply(change) {
    const device = this.devices[change.device];
    this.seq = change.seq;
    this.stats.applied += 1;
    if (!device) return; // not in our snapshot: nothing to show it on
    Object.assign(device.state, change.state);
    if (change.actions) {
      // A description change: the device's new actions, with every schema they name.
      Object.assign(this.schemas, change.schemas || {});
      device.actions = change.actions;
      this.onDescribe(change.device);
    }
    this.onApply(change.device, device.state);
  }

  /** The cache lacks a schema the hub thinks it has: ask once for a snapshot with all of them. */
  async requestSchemas() {
    if (this.syncing || this.askedAll || !this.connected()) return;
    this.syncing = true;
    this.askedAll = true;
    this.onStatus();
    let answer = null;
    try {
      answer = await this.call("sync", { epoch: null, seq: -1 }); // names none: sent them all
    } catch {
      // Disconnected or timed out: the next connect sends what is held again.
    }
    this.syncing = false;
    if (answer && answer.snapshot) {
      this.loadSnapshot(answer.snapshot);
    } else {
      this.onStatus();
    }
  }

  async requestSync() {
    if (this.syncing) return;
    this.syncing = true;
    this.stats.syncs += 1;
    this.onStatus();
    try {
      const asked = { epoch: this.epoch, seq: this.seq };
      const held = this.heldSchemas();
      if (held.length) asked.schemas = held;
      const answer = await this.call("sync", asked);
      if (answer && answer.snapshot) {
        this.loadSnapshot(answer.snapshot);
      } else if (answer && Array.isArray(answer.changes)) {
        for (const change of answer.changes) {
          if (change.epoch === this.epoch && change.seq === this.seq + 1) this.apply(change);
        }
        this.drain();
      }
    } catch {
      // Disconnected or timed out: the reconnect resumes from (epoch, seq).
    } finally {
      this.syncing = false;
    }
    if (this.early.size && this.connected()) {
      this.requestSync();
    } else {
      this.onStatus();
    }
  }
}
