// The page's one WebSocket to /api/v1/ws: it signs in with the session cookie (token null),
// resumes from the last event id it saw, and reconnects with a backoff (1 s, 2 s ... 30 s).
// Frames with an id reach `onEvent` once each, in order; typing frames have no id.

export class Live {
  constructor({ lastEventId, onEvent, onStatus }) {
    this.last = lastEventId || null;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.socket = null;
    this.delay = 1000;
    this.timer = null;
    this.stopped = false;
    window.addEventListener("offline", () => this.offline());
    window.addEventListener("online", () => this.reconnectNow());
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/v1/ws`;
  }

  start() {
    if (!navigator.onLine) {
      this.onStatus("offline");
      return;
    }
    this.connect();
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "auth", token: null, lastEventId: this.last }));
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === 4401) {
        this.stopped = true; // signed out elsewhere: the next page load asks to sign in
        this.onStatus("signed-out");
        return;
      }
      this.retry();
    });
  }

  receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch (error) {
      return;
    }
    if (frame.type === "resync") {
      location.reload(); // what we missed is too old to replay: the page reloads it all
      return;
    }
    if (frame.type === "ready") {
      this.last = frame.lastEventId;
      this.delay = 1000;
      this.onStatus("live");
      return;
    }
    if (frame.id) {
      if (this.last !== null && frame.id <= this.last) return;
      this.last = frame.id;
    }
    if (frame.type !== "pong") this.onEvent(frame);
  }

  retry() {
    if (this.stopped) return;
    this.onStatus(navigator.onLine ? "reconnecting" : "offline");
    if (!navigator.onLine) return; // the "online" event reconnects
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, 30000);
  }

  offline() {
    this.onStatus("offline");
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close();
  }

  reconnectNow() {
    if (this.stopped) return;
    this.delay = 1000;
    if (!this.socket) {
      this.onStatus("reconnecting");
      this.connect();
    }
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
    }
  }
}
