// Every page: the live connection and its visible state, unread badges, answer countdowns,
// the request sound for providers, and forms that must not be sent twice.
import { Live } from "./live.js";

const strings = JSON.parse(document.getElementById("pesan-strings").textContent);
const liveData = document.getElementById("pesan-live");
const state = liveData ? JSON.parse(liveData.textContent) : null;

export function t(key, values = {}) {
  let text = strings[key] || key;
  if (typeof text !== "string") return text;
  for (const [name, value] of Object.entries(values)) text = text.replace(`%(${name})s`, value);
  return text;
}

// A short line for a message in a list (system lines are shown in full in the chat).
export function messageText(message) {
  if (message.isSystemMessage) return t("bookingUpdate");
  if (message.messageType === "booking") return t("newRequest");
  return message.content;
}

export function csrfToken() {
  const field = document.querySelector('input[name="csrftoken"]');
  return field ? field.value : "";
}

// POST a form (or FormData) from a script: CSRF header, and a marker so the server answers
// with a fragment or JSON instead of a redirect.
export async function post(url, data) {
  return fetch(url, {
    method: "POST",
    body: data,
    credentials: "same-origin",
    headers: { "x-csrftoken": csrfToken(), "x-requested-with": "pesan" },
  });
}

// -- live state --------------------------------------------------------------------------
const statusLine = document.getElementById("live-status");
function showStatus(status) {
  document.body.dataset.live = status;
  if (!statusLine) return;
  if (status === "live") {
    statusLine.hidden = true;
    statusLine.textContent = "";
  } else if (status === "reconnecting" || status === "offline") {
    statusLine.hidden = false;
    statusLine.textContent = t(status);
  }
}

// -- unread badges -----------------------------------------------------------------------
const unread = Object.assign({}, state ? state.unread : {});
function showUnread() {
  const total = Object.values(unread).reduce((a, b) => a + b, 0);
  const badge = document.getElementById("unread-total");
  if (badge) {
    badge.textContent = String(total);
    badge.dataset.count = String(total);
    badge.hidden = total === 0;
  }
  for (const element of document.querySelectorAll("[data-unread-for]")) {
    const count = unread[element.dataset.unreadFor] || 0;
    element.textContent = String(count);
    element.hidden = count === 0;
  }
}

// A conversation new to this page's list gets an entry like the server's (text only).
function listEntry(conversation) {
  const other = conversation.participants.find((p) => p.id !== state.userId);
  const item = document.createElement("li");
  item.dataset.conversation = conversation.id;
  const link = document.createElement("a");
  link.href = `/chat/${conversation.id}`;
  for (const [name, text] of [["name", other ? other.name : ""], ["badge", ""], ["last", ""]]) {
    const part = document.createElement("span");
    part.className = name;
    part.textContent = text;
    if (name === "badge") part.dataset.unreadFor = conversation.id;
    link.append(part);
  }
  item.append(link);
  return item;
}

function onConversation(conversation) {
  unread[conversation.id] = conversation.unreadCount;
  const list = document.getElementById("conversations");
  let item = list && list.querySelector(`[data-conversation="${conversation.id}"]`);
  if (list && !item) item = listEntry(conversation);
  if (item) {
    if (conversation.lastMessage) {
      item.querySelector(".last").textContent = messageText(conversation.lastMessage).slice(0, 80);
    }
    list.prepend(item);
  }
  showUnread();
}

// -- the sound of a new request (made here with WebAudio: nothing to download) -------------
window.pesanSoundCount = 0;
let audio = null;
export function ring() {
  window.pesanSoundCount += 1;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const now = audio.currentTime;
    for (const [offset, pitch] of [[0, 880], [0.18, 1175]]) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = pitch;
      gain.gain.setValueAtTime(0.0001, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.3, now + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.16);
      tone.connect(gain).connect(audio.destination);
      tone.start(now + offset);
      tone.stop(now + offset + 0.17);
    }
  } catch (error) {
    // no audio device: the request still shows, with its countdown
  }
}

// -- countdowns to respondBy ---------------------------------------------------------------
function tick() {
  const now = Date.now();
  for (const element of document.querySelectorAll("[data-countdown]")) {
    const left = Math.round((Date.parse(element.dataset.countdown) - now) / 1000);
    if (left <= 0) {
      element.textContent = t("timeUp");
      element.classList.add("over");
    } else {
      const minutes = Math.floor(left / 60);
      const seconds = String(left % 60).padStart(2, "0");
      element.textContent = t("left", { time: `${minutes}:${seconds}` });
    }
  }
}
tick();
setInterval(tick, 1000);

// -- forms sent once ---------------------------------------------------------------------
for (const form of document.querySelectorAll("form[data-once]")) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    for (const button of form.querySelectorAll("button[type=submit]")) {
      setTimeout(() => (button.disabled = true), 0);
    }
  });
}

// -- Schedule: the free times depend on the treatment's length --------------------------------
for (const choice of document.querySelectorAll("input[data-reload-slots]")) {
  choice.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set("service", choice.value);
    location.assign(url);
  });
}

// -- the live connection -------------------------------------------------------------------
export const live = state
  ? new Live({
      lastEventId: state.lastEventId,
      onStatus: showStatus,
      onEvent: (frame) => {
        if (frame.type === "conversation.updated") onConversation(frame.data);
        if (frame.type === "booking.created" && frame.data.providerId === state.userId) ring();
        document.dispatchEvent(new CustomEvent("pesan:event", { detail: frame }));
      },
    })
  : null;
export const me = state ? state.userId : null;
showUnread();
if (live) live.start();
window.addEventListener("offline", () => showStatus("offline"));
