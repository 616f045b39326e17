// The panel algorithm of DESIGN.md §3, without any DOM.
//
// Keeps (epoch, seq, devices). A snapshot loads wholesale; a change applies only when its
// epoch matches and seq == last + 1; changes that come early wait; a gap or an unknown
// epoch calls `sync` and applies its answer. `resumeAuth()` is what a reconnect sends.
// A snapshot can also come while connected, with the same epoch and seq, when a reload of
// the hub's deployment changed the room's devices or name: it loads the same way, and
// `onReset` redraws the device list in place.

export class RoomSync {
  /**
   * @param {object} hooks
   * @param {(event: string, data: object) => Promise<object>} hooks.call  ack-returning emit
   * @param {() => boolean} hooks.connected  whether a sync can be sent now
   * @param {() => void} [hooks.onReset]  after a snapshot replaced everything
   * @param {(device: string, state: object) => void} [hooks.onApply]  after one change
   * @param {() => void} [hooks.onStatus]  after anything that may change `inSync`
   */
  constructor({ call, connected, onReset = () => {}, onApply = () => {}, onStatus = () => {} }) {
    this.call = call;
    this.connected = connected;
    this.onReset = onReset;
    this.onApply = onApply;
    this.onStatus = onStatus;
    this.epoch = null;
    this.seq = -1;
    this.room = null;
    this.devices = {};
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
    this.onReset();
    this.onStatus();
    return true;
  }

  loadSnapshot(snapshot) {
    this.stats.snapshots += 1;
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
    this.onApply(change.device, device.state);
  }

  async requestSync() {
    if (this.syncing) return;
    this.syncing = true;
    this.stats.syncs += 1;
    this.onStatus();
    try {
      const answer = await this.call("sync", { epoch: this.epoch, seq: this.seq });
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
