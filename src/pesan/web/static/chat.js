// One conversation, live: new messages, read ticks, typing, booking cards and their actions.
// Message text is only ever set with textContent: it is never HTML.
import { live, me, messageText, post, t } from "./app.js";

const chat = document.getElementById("chat");
const conversationId = chat.dataset.conversation;
const list = document.getElementById("messages");
const cards = document.getElementById("booking-cards");
const typingLine = document.getElementById("typing");
const composer = document.getElementById("composer");
const readOnly = chat.hasAttribute("data-read-only");
const lang = document.body.dataset.lang;
const clock = new Intl.DateTimeFormat(lang, {
  hour: "2-digit", minute: "2-digit", hour12: false, timeZone: chat.dataset.zone,
});

function tickFor(element, read) {
  element.textContent = read ? "✓✓" : "✓";
  element.classList.toggle("read", read);
  element.setAttribute("aria-label", read ? t("read") : t("sent"));
}

function place(item) {
  if (list.querySelector(`[data-id="${CSS.escape(item.dataset.id)}"]`)) return false;
  // keep the list in id order (ids sort by time)
  const later = [...list.children].find((li) => li.dataset.id > item.dataset.id);
  list.insertBefore(item, later || null);
  const empty = document.getElementById("no-messages");
  if (empty) empty.remove();
  item.scrollIntoView({ block: "end" });
  return true;
}

// The server's own lines come as the server renders them: in the reader's language.
async function addSystemMessage(message) {
  const response = await fetch(`/chat/${conversationId}/messages/${message.id}`, {
    credentials: "same-origin", headers: { "x-requested-with": "pesan" },
  });
  if (!response.ok) return;
  const holder = document.createElement("template");
  holder.innerHTML = (await response.text()).trim(); // our own escaped fragment
  place(holder.content.firstElementChild);
}

function addMessage(message) {
  if (list.querySelector(`[data-id="${CSS.escape(message.id)}"]`)) return false;
  if (message.isSystemMessage || message.messageType === "reschedule") {
    addSystemMessage(message);
    return true;
  }
  const item = document.getElementById("message-template").content.firstElementChild.cloneNode(true);
  const mine = message.senderId === me;
  item.classList.add(message.isSystemMessage ? "system" : mine ? "mine" : "theirs");
  item.classList.add(`type-${message.messageType}`);
  item.dataset.id = message.id;
  item.dataset.sender = message.senderId;
  item.querySelector(".who").textContent = message.senderName;
  item.querySelector(".text").textContent = messageText(message);
  const time = item.querySelector("time");
  time.dateTime = message.createdAt;
  time.textContent = `${clock.format(new Date(message.createdAt))} ${chat.dataset.zoneLabel}`;
  const tick = item.querySelector(".tick");
  if (mine) tickFor(tick, message.read);
  else tick.remove();
  return place(item);
}

function markMineRead(upTo) {
  for (const item of list.querySelectorAll(".msg.mine")) {
    if (item.dataset.id <= upTo) tickFor(item.querySelector(".tick"), true);
  }
}

// Tell the server what we have seen: the newest message from the other side.
let readTimer = null;
function markRead() {
  if (readOnly || document.hidden) return;
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    const theirs = [...list.querySelectorAll(".msg:not(.mine)")];
    if (!theirs.length) return;
    const data = new FormData();
    data.append("up_to", theirs[theirs.length - 1].dataset.id);
    try {
      await post(`/chat/${conversationId}/read`, data);
    } catch (error) {
      // offline: the next message or visit marks them
    }
  }, 300);
}
document.addEventListener("visibilitychange", markRead);

// -- booking cards ---------------------------------------------------------------------------
async function refreshCard(bookingId) {
  const response = await fetch(`/bookings/${bookingId}/card`, {
    credentials: "same-origin", headers: { "x-requested-with": "pesan" },
  });
  if (!response.ok) return;
  placeCard(await response.text());
}

function placeCard(html) {
  const holder = document.createElement("div");
  holder.innerHTML = html; // our own server-rendered, escaped card
  const card = holder.firstElementChild;
  const old = document.getElementById(card.id);
  if (old) old.replaceWith(card);
  else cards.prepend(card);
  wireCard(card);
}

function wireCard(card) {
  for (const form of card.querySelectorAll("form[data-card-action]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const buttons = card.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        const response = await post(form.action, new FormData(form));
        placeCard(await response.text());
      } catch (error) {
        buttons.forEach((b) => (b.disabled = false));
        const problem = card.querySelector(".card-problem");
        problem.textContent = t("actionFailed");
        problem.hidden = false;
      }
    });
  }
}
for (const card of cards.querySelectorAll(".booking-card")) wireCard(card);

// -- typing ------------------------------------------------------------------------------------
let typingTimer = null;
function showTyping() {
  typingLine.textContent = t("typing", { name: chat.dataset.other });
  typingLine.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => (typingLine.hidden = true), 4000);
}

// -- sending -----------------------------------------------------------------------------------
if (composer && !readOnly) {
  const field = composer.querySelector("textarea");
  const problem = document.getElementById("send-problem");
  let pendingId = null;
  let lastTyping = 0;
  field.addEventListener("input", () => {
    pendingId = null; // new text: a new message
    const now = Date.now();
    if (live && now - lastTyping > 1000) {
      lastTyping = now;
      live.send({ type: "typing", conversationId });
    }
  });
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = field.value;
    if (!text.trim()) return;
    // the same id on a retry: the server stores the message once
    pendingId = pendingId || crypto.randomUUID();
    const data = new FormData(composer);
    data.append("client_message_id", pendingId);
    const button = composer.querySelector("button");
    button.disabled = true;
    try {
      const response = await post(composer.action, data);
      if (!response.ok) throw new Error(String(response.status));
      addMessage(await response.json());
      field.value = "";
      pendingId = null;
      problem.hidden = true;
    } catch (error) {
      problem.textContent = t("notSent");
      problem.hidden = false;
    } finally {
      button.disabled = false;
      field.focus();
    }
  });
}

// -- live events -------------------------------------------------------------------------------
document.addEventListener("pesan:event", (event) => {
  const frame = event.detail;
  const data = frame.data || {};
  if (frame.type === "message.created" && data.conversationId === conversationId) {
    // a proposal to move a booking, or its answer, changes what the card offers
    if (data.bookingId && data.messageType !== "booking") refreshCard(data.bookingId);
    if (addMessage(data) && data.senderId !== me) {
      typingLine.hidden = true;
      markRead();
    }
  } else if (frame.type === "message.read" && data.conversationId === conversationId) {
    if (data.readerId !== me) markMineRead(data.upToMessageId);
  } else if ((frame.type === "booking.created" || frame.type === "booking.updated")
      && data.conversationId === conversationId) {
    refreshCard(data.id);
  } else if (frame.type === "typing" && data.conversationId === conversationId && data.userId !== me) {
    showTyping();
  }
});

const last = list.lastElementChild;
if (last) last.scrollIntoView({ block: "end" });
markRead();
