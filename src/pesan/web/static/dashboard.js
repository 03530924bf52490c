// The provider's dashboard: new requests and changes appear without reloading (the sound is
// played for every page by app.js).
import { post } from "./app.js";

const work = document.getElementById("work");

async function refresh() {
  const response = await fetch("/dashboard/work", {
    credentials: "same-origin", headers: { "x-requested-with": "pesan" },
  });
  if (!response.ok) return;
  work.innerHTML = await response.text(); // our own server-rendered, escaped fragment
  wire();
}

function wire() {
  for (const form of work.querySelectorAll("form[data-card-action]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      form.querySelectorAll("button").forEach((b) => (b.disabled = true));
      try {
        await post(form.action, new FormData(form));
      } finally {
        refresh();
      }
    });
  }
}

document.addEventListener("pesan:event", (event) => {
  const type = event.detail.type;
  if (type === "booking.created" || type === "booking.updated") refresh();
});
wire();
