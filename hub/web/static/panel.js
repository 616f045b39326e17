// The touch panel of one room: /rooms/<room_id>, talking Socket.IO to namespace /rooms/<room_id>.

import { io } from "/vendor/socket.io.esm.min.js";
import { DeviceCard } from "./cards.js";
import { Commander } from "./commands.js";
import { MacroBar, ROOM_DEVICE } from "./macros.js";
import { RoomSync } from "./sync.js";

const roomId = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
const TOKEN_KEY = `avhub.token.${roomId}`; // localStorage: survives reloads and reboots
const SYNC_KEY = `avhub.sync.${roomId}`; // sessionStorage: (epoch, seq, state) to resume
const SCHEMAS_KEY = `avhub.schemas.${roomId}`; // localStorage: action schemas by id
const SAVE_DELAY_MS = 200;

const $ = (selector) => document.querySelector(selector);
const banner = $("#banner");
const devicesEl = $("#devices");
const macrosEl = $("#macros");
const prompt = $("#token-prompt");
const promptMessage = $("#token-message");
const tokenInput = $("#token-input");
$("#room-name").textContent = roomId; // until the snapshot brings the room's name

// ---- token --------------------------------------------------------------------------------

function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  if (token) localStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete("token"); // keep it out of the address bar, history and screenshots
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

const storedToken = () => localStorage.getItem(TOKEN_KEY);

function askForToken(message) {
  prompt.hidden = false;
  promptMessage.textContent = message;
  tokenInput.value = "";
  tokenInput.focus();
  showLink();
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  prompt.hidden = true;
  promptMessage.textContent = "";
  socket.connect();
});

// ---- state ----------------------------------------------------------------------------------

const cards = new Map();
const macros = new MacroBar((...args) => commander.send(...args));
macrosEl.append(macros.el);
let linkUp = false;
let everConnected = false;
let saveTimer = null;
let gone = null; // the hub's `closing` message once this room left its deployment

function saveSoon() {
  if (saveTimer !== null) return;
  saveTimer = setTimeout(save, SAVE_DELAY_MS);
}

function save() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (gone) return; // nothing to resume in a room that left the hub
  const saved = sync.saved();
  if (saved) sessionStorage.setItem(SYNC_KEY, JSON.stringify(saved));
  try {
    localStorage.setItem(SCHEMAS_KEY, JSON.stringify(sync.usedSchemas()));
  } catch {
    // Storage full or refused: the next visit is sent the schemas again.
  }
}

function render() {
  if (sync.room) {
    $("#room-name").textContent = sync.room.name || sync.room.id;
    document.title = `${sync.room.name || sync.room.id} · avhub`;
  }
  const room = sync.view(ROOM_DEVICE);
  macrosEl.hidden = !room;
  if (room) macros.show(room);
  const seen = new Set();
  for (const id of Object.keys(sync.devices)) {
    if (id === ROOM_DEVICE) continue; // the room's macros, above the cards
    let card = cards.get(id);
    if (!card) {
      card = new DeviceCard(id, (...args) => commander.send(...args));
      card.stale = !(linkUp && sync.inSync); // a view restored before the hub answered
      cards.set(id, card);
    }
    card.show(sync.view(id));
    devicesEl.append(card.el); // in snapshot order
    seen.add(id);
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.el.remove();
      cards.delete(id);
    }
  }
  saveSoon();
}

function showLink() {
  const inSync = linkUp && sync.inSync;
  // While the hub cannot be reached nothing on the page is current and no control works:
  // the cards say so, look it, and take no touches (inert) until the panel is in sync.
  const stale = !inSync;
  devicesEl.inert = stale;
  macrosEl.inert = stale;
  for (const card of cards.values()) card.setStale(stale);
  if (inSync && document.body.dataset.sync !== "ok") {
    for (const card of cards.values()) card.clearError(); // said while the hub was away
    macros.clearError();
  }
  document.body.dataset.link = linkUp ? "up" : "down";
  document.body.dataset.sync = inSync ? "ok" : "pending";
  document.body.dataset.gone = gone ? "yes" : "no";
  const waiting = !prompt.hidden;
  banner.hidden = (inSync || waiting) && !gone;
  if (gone) {
    banner.textContent = "This room is no longer on the hub.";
  } else {
    banner.textContent = everConnected || sync.epoch !== null ? "Reconnecting…" : "Connecting…";
  }
}

function roomGone(message) {
  gone = message || "removed";
  sessionStorage.removeItem(SYNC_KEY);
  localStorage.removeItem(SCHEMAS_KEY);
  for (const card of cards.values()) card.el.remove();
  cards.clear();
  showLink();
}

// ---- socket ---------------------------------------------------------------------------------

takeTokenFromUrl();

const socket = io(`/rooms/${roomId}`, {
  // WebSocket first: one request to connect and to come back (the hub answers it at its
  // door), and any hub behind a load balancer may take it; long-polling if it fails.
  transports: ["websocket", "polling"],
  tryAllTransports: true,
  autoConnect: false,
  reconnectionDelay: 500,
  reconnectionDelayMax: 3000,
  auth: (cb) => {
    const auth = {};
    const token = storedToken();
    if (token) auth.token = token;
    const resume = sync.resumeAuth();
    if (resume) {
      auth.resume = resume;
      stats.resumes += 1;
    }
    const held = sync.heldSchemas();
    if (held.length) auth.schemas = held;
    cb(auth);
  },
});
const commander = new Commander(socket);
const stats = { connects: 0, resumes: 0, refusals: 0, schemas: 0 };

const sync = new RoomSync({
  call: (event, data) => socket.timeout(10000).emitWithAck(event, data),
  connected: () => socket.connected,
  onReset: render,
  onApply: (id) => {
    if (id === ROOM_DEVICE) macros.refresh();
    else cards.get(id)?.refresh();
    saveSoon();
  },
  onDescribe: (id) => {
    if (id === ROOM_DEVICE) macros.show(sync.view(id));
    else cards.get(id)?.show(sync.view(id));
  },
  onStatus: showLink,
});

socket.on("connect", () => {
  linkUp = true;
  everConnected = true;
  stats.connects += 1;
  prompt.hidden = true;
  showLink();
});

socket.on("disconnect", (reason) => {
  linkUp = false;
  showLink();
  // The hub dropped us: come back, unless it said why first (`closing`).
  if (reason === "io server disconnect" && !gone && prompt.hidden) socket.connect();
});

// Sent just before the hub disconnects this panel for good reason: the room was removed
// from the deployment (a reload), or the panel token was withdrawn.
socket.on("closing", (why) => {
  if (why && why.code === "unauthorized") {
    localStorage.removeItem(TOKEN_KEY);
    askForToken("The panel token was withdrawn. Enter the token for this room.");
  } else {
    roomGone(why && why.message);
  }
});

socket.on("connect_error", (err) => {
  linkUp = false;
  if (err && err.data && err.data.code === "room_removed") {
    roomGone(err.data.message);
    return;
  }
  if (err && err.data && err.data.code === "unauthorized") {
    stats.refusals += 1;
    const had = storedToken();
    localStorage.removeItem(TOKEN_KEY);
    askForToken(
      had
        ? "That panel token was refused. Check it and enter it again."
        : "This room needs a panel token. Enter the token for this room.",
    );
    return; // refused namespaces are not retried: the next try is the form's
  }
  showLink();
});

socket.on("snapshot", (snapshot) => {
  stats.schemas += Object.keys(snapshot.schemas || {}).length; // those it did not hold
  sync.loadSnapshot(snapshot);
});
socket.on("change", (change) => sync.receiveChange(change));

addEventListener("pagehide", save);

try {
  Object.assign(sync.schemas, JSON.parse(localStorage.getItem(SCHEMAS_KEY) || "{}"));
} catch {
  localStorage.removeItem(SCHEMAS_KEY);
}
try {
  sync.restore(JSON.parse(sessionStorage.getItem(SYNC_KEY) || "null"));
} catch {
  sessionStorage.removeItem(SYNC_KEY);
}
showLink();
socket.connect();

// For people and tests poking at a running panel.
window.avhub = { socket, sync, cards, macros, stats, commander };
