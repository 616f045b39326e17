// Sending commands: acks with a timeout, and a throttle for sliders.

const NOT_CONNECTED = {
  ok: false,
  error: { code: "not_connected", message: "Not connected to the hub; try again in a moment." },
};

/** Sends `command` events and resolves with the ack (never rejects). */
export class Commander {
  // Long enough for a command the hub holds until a projector has warmed up.
  constructor(socket, timeoutMs = 45000) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    this.sent = 0;
  }

  async send(device, action, args = {}) {
    if (!this.socket.connected) return NOT_CONNECTED;
    this.sent += 1;
    try {
      return await this.socket
        .timeout(this.timeoutMs)
        .emitWithAck("command", { device, action, args });
    } catch {
      return {
        ok: false,
        error: { code: "timeout", message: "The hub did not answer in time." },
      };
    }
  }
}

/**
 * Rate-limits a stream of values: `push` sends at most one value per `intervalMs`
 * (the first at once, then the latest one at the end of each interval); `flush` sends
 * the final value now unless the last `push` already sent it.
 */
export function throttle(send, intervalMs = 100) {
  let lastAt = -Infinity;
  let lastSent;
  let pending;
  let timer = null;

  const fire = (value) => {
    lastAt = performance.now();
    lastSent = value;
    send(value);
  };

  return {
    push(value) {
      const wait = lastAt + intervalMs - performance.now();
      if (wait <= 0 && timer === null) {
        fire(value);
        return;
      }
      pending = value;
      if (timer === null) {
        timer = setTimeout(
          () => {
            timer = null;
            fire(pending);
          },
          Math.max(wait, 0),
        );
      }
    },
    flush(value) {
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      if (value !== lastSent) fire(value);
      lastSent = undefined; // the next gesture starts afresh, whatever the device did meanwhile
    },
  };
}
