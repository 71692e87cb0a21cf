// The chat page: a plain WebSocket client of the chat's API (see README.md in
// examples/chat). No framework, no build step. Every value from the network
// is rendered with textContent, never as HTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"),
    registerForm: $("register-form"), userId: $("user-id"), me: $("me"), meName: $("me-name"), meAvatar: $("me-avatar"),
    online: $("online"), onlineCount: $("online-count"), onlineEmpty: $("online-empty"),
    joinForm: $("join-form"), roomName: $("room-name"), rooms: $("rooms"),
    dmForm: $("dm-form"), dmUser: $("dm-user"), dms: $("dms"),
    error: $("error"), errorText: $("error-text"), errorClose: $("error-close"),
    title: $("conv-title"), sub: $("conv-sub"), welcome: $("welcome"), messages: $("messages"),
    sendForm: $("send-form"), message: $("message"), sendBtn: $("send-btn"),
  };

  const endpoint = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

  const state = {
    ws: null,
    connected: false,
    attempt: 0,        // reconnection attempts since the last successful open
    retryTimer: null,
    countdown: null,
    me: null,          // registered user ID
    wanted: null,      // the user ID to register (again after a reconnect)
    online: [],
    convs: new Map(),  // key ("#room" or "@user") -> conversation
    current: null,     // key of the conversation shown
  };

  // ---- connection ---------------------------------------------------------

  function connect() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdown);
    setStatus("connecting", state.attempt ? "Reconnecting…" : "Connecting…");
    let ws;
    try {
      ws = new WebSocket(endpoint);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.onopen = () => {
      state.connected = true;
      const again = state.attempt > 0;
      state.attempt = 0;
      setStatus("connected", "Connected");
      if (again) {
        hideError();
        system(null, "Reconnected.");
      }
      if (state.wanted) send({ action: "registerUser", userId: state.wanted });
      updateComposer();
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        showError("The server sent a frame that is not JSON.");
        return;
      }
      handle(msg);
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      const wasConnected = state.connected;
      state.connected = false;
      state.ws = null;
      state.me = null;
      updateComposer();
      if (wasConnected) showError("Connection lost. Reconnecting…");
      scheduleReconnect();
    };
  }

  // Exponential backoff with jitter: about 0.5 s, 1 s, 2 s … up to 15 s.
  function scheduleReconnect() {
    state.attempt++;
    const base = Math.min(15000, 500 * 2 ** (state.attempt - 1));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    const until = Date.now() + delay;
    const tick = () => {
      const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setStatus("reconnecting", `Disconnected · retrying in ${s}s (attempt ${state.attempt})`);
    };
    tick();
    state.countdown = setInterval(tick, 250);
    state.retryTimer = setTimeout(connect, delay);
  }

  function send(obj) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      showError("Not connected to the server: wait for the connection to come back.");
      return false;
    }
    state.ws.send(JSON.stringify(obj));
    return true;
  }

  function setStatus(kind, text) {
    el.status.className = "status " + kind;
    el.status.textContent = text;
  }

  // ---- messages from the server ----------------------------------------

  function handle(msg) {
    switch (msg.type) {
      case "registrationSuccess":
        state.me = msg.userId;
        state.wanted = msg.userId;
        el.meName.textContent = msg.userId;
        paintAvatar(el.meAvatar, msg.userId);
        el.me.hidden = false;
        el.registerForm.hidden = true;
        hideError();
        // After a reconnect, take our seats again.
        for (const c of state.convs.values()) {
          if (c.kind === "room" && c.joined) send({ action: "join", room: c.name });
        }
        updateComposer();
        break;
      case "presence":
        state.online = msg.users || [];
        renderOnline();
        break;
      case "privateMessage": {
        const c = conv("@" + msg.fromUserId);
        add(c, { kind: "private", from: msg.fromUserId, text: msg.message });
        break;
      }
      case "joinSuccess": {
        const c = conv("#" + msg.room);
        const first = !c.joined;
        c.joined = true;
        c.members = msg.members || [];
        if (first) system(c, `You joined #${msg.room}.`);
        select(c.key);
        break;
      }
      case "leaveSuccess": {
        const c = state.convs.get("#" + msg.room);
        if (c) {
          c.joined = false;
          c.members = [];
          system(c, `You left #${msg.room}.`);
        }
        break;
      }
      case "userJoined":
      case "userLeft": {
        const c = conv("#" + msg.room);
        const set = new Set(c.members);
        if (msg.type === "userJoined") set.add(msg.userId); else set.delete(msg.userId);
        c.members = [...set].sort();
        system(c, `${msg.userId} ${msg.type === "userJoined" ? "joined" : "left"} #${msg.room}.`);
        break;
      }
      case "roomMessage": {
        const c = conv("#" + msg.room);
        add(c, { kind: "room", from: msg.fromUserId, text: msg.message });
        break;
      }
      case "error":
        onError(msg);
        break;
      default:
        if (msg.message && msg.connectionId) {
          // API Gateway's own frames: "Forbidden", "Internal server error".
          showError(`Server error: ${msg.message} (request ${msg.requestId || "?"}).`);
        } else if (typeof msg.message === "string") {
          // Anything else with a message, such as a notice pushed through
          // the management API.
          showBanner(msg.message, "info");
        }
    }
  }

  function onError(e) {
    let text = e.message || "Something went wrong.";
    if (e.code === "notRegistered") text = "You are not registered: pick a user ID first.";
    if (e.code === "userIdTaken") {
      state.wanted = null;
      el.registerForm.hidden = false;
      el.me.hidden = true;
    }
    showError(text);
    const related = e.targetUserId ? state.convs.get("@" + e.targetUserId)
      : e.room ? state.convs.get("#" + e.room) : null;
    if (related) add(related, { kind: "error", text });
  }

  // ---- conversations --------------------------------------------------------

  function conv(key) {
    let c = state.convs.get(key);
    if (!c) {
      c = { key, kind: key[0] === "#" ? "room" : "dm", name: key.slice(1), items: [], unread: 0, members: [], joined: false };
      state.convs.set(key, c);
      renderLists();
    }
    return c;
  }

  function add(c, item) {
    item.time = new Date();
    c.items.push(item);
    if (c.key === state.current) {
      el.messages.appendChild(renderItem(item));
      el.messages.scrollTop = el.messages.scrollHeight;
      if (c.kind === "room") renderHeader();
    } else if (item.kind !== "system") {
      c.unread++;
    }
    renderLists();
  }

  function system(c, text) {
    if (!c) c = state.current ? state.convs.get(state.current) : null;
    if (c) add(c, { kind: "system", text });
  }

  function select(key) {
    state.current = key;
    const c = state.convs.get(key);
    c.unread = 0;
    el.welcome.hidden = true;
    el.messages.replaceChildren(...c.items.map(renderItem));
    el.messages.scrollTop = el.messages.scrollHeight;
    renderHeader();
    renderLists();
    updateComposer();
    el.message.focus();
  }

  function renderHeader() {
    const c = state.convs.get(state.current);
    if (!c) return;
    el.title.textContent = (c.kind === "room" ? "#" : "@") + c.name;
    if (c.kind === "room") {
      const n = c.members.length;
      el.sub.textContent = c.joined ? `${n} member${n === 1 ? "" : "s"}: ${c.members.join(", ")}` : "You are not in this room.";
    } else {
      el.sub.textContent = state.online.includes(c.name) ? "online · private conversation" : "offline";
    }
  }

  function renderItem(item) {
    const li = document.createElement("li");
    const mine = item.from && item.from === state.me && item.kind !== "system";
    li.className = "msg " + item.kind + (mine ? " mine" : "");
    if (item.kind === "system" || item.kind === "error") {
      const t = document.createElement("span");
      t.className = "text";
      t.textContent = item.text;
      li.appendChild(t);
      return li;
    }
    const av = document.createElement("span");
    av.className = "avatar";
    paintAvatar(av, item.from);
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const meta = document.createElement("div");
    meta.className = "meta";
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = mine ? "You" : item.from;
    const time = document.createElement("time");
    time.textContent = item.time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.append(from, time);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = item.text;
    bubble.append(meta, text);
    li.append(av, bubble);
    return li;
  }

  function renderOnline() {
    el.onlineCount.textContent = String(state.online.length);
    el.onlineEmpty.hidden = state.online.length > 0;
    el.online.replaceChildren(...state.online.map((u) => {
      const li = document.createElement("li");
      li.dataset.user = u;
      const dot = document.createElement("span");
      dot.className = "dot";
      const name = document.createElement("span");
      name.textContent = u;
      li.append(dot, name);
      if (u === state.me) {
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = "you";
        li.appendChild(you);
      } else {
        li.title = "Send " + u + " a private message";
        li.onclick = () => select(conv("@" + u).key);
      }
      return li;
    }));
    renderHeader();
  }

  function renderLists() {
    const rooms = [], dms = [];
    for (const c of state.convs.values()) {
      const li = document.createElement("li");
      li.dataset.conv = c.key;
      if (c.key === state.current) li.className = "active";
      const mark = document.createElement("span");
      mark.className = "hash";
      mark.textContent = c.kind === "room" ? "#" : "@";
      const name = document.createElement("span");
      name.textContent = c.name;
      li.append(mark, name);
      if (c.unread > 0) {
        const b = document.createElement("span");
        b.className = "badge";
        b.textContent = String(c.unread);
        li.appendChild(b);
      }
      li.onclick = () => select(c.key);
      (c.kind === "room" ? rooms : dms).push(li);
    }
    el.rooms.replaceChildren(...rooms);
    el.dms.replaceChildren(...dms);
  }

  function updateComposer() {
    const ok = state.connected && state.current !== null;
    el.message.disabled = !ok;
    el.sendBtn.disabled = !ok;
  }

  // A stable colour per user ID.
  function paintAvatar(node, id) {
    let h = 0;
    for (const ch of id) h = (h * 31 + ch.codePointAt(0)) % 360;
    node.style.background = `hsl(${h}, 55%, 52%)`;
    node.textContent = id.slice(0, 1);
  }

  // ---- errors ------------------------------------------------------------------

  let errorTimer = null;
  function showError(text) {
    showBanner(text, "error");
  }
  function showBanner(text, kind) {
    el.error.className = "banner " + kind;
    el.errorText.textContent = text;
    el.error.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, 12000);
  }
  function hideError() {
    el.error.hidden = true;
  }
  el.errorClose.onclick = hideError;

  // ---- forms ----------------------------------------------------------------------

  el.registerForm.onsubmit = (ev) => {
    ev.preventDefault();
    const id = el.userId.value.trim();
    if (!id) return showError("Type a user ID to register.");
    state.wanted = id;
    send({ action: "registerUser", userId: id });
  };

  el.joinForm.onsubmit = (ev) => {
    ev.preventDefault();
    const room = el.roomName.value.trim().replace(/^#/, "");
    if (!room) return showError("Type the name of a room to join.");
    if (send({ action: "join", room })) el.roomName.value = "";
  };

  el.dmForm.onsubmit = (ev) => {
    ev.preventDefault();
    const user = el.dmUser.value.trim().replace(/^@/, "");
    if (!user) return showError("Type the user ID of the person to message.");
    el.dmUser.value = "";
    select(conv("@" + user).key);
  };

  el.sendForm.onsubmit = (ev) => {
    ev.preventDefault();
    const text = el.message.value;
    const c = state.convs.get(state.current);
    if (!c || !text.trim()) return;
    if (c.kind === "room") {
      if (!send({ action: "sendMessage", room: c.name, message: text })) return;
    } else {
      if (!send({ action: "sendPrivateMessage", targetUserId: c.name, message: text })) return;
      // The chat sample sends no receipt: show our own message at once.
      add(c, { kind: "private", from: state.me || "you", text });
    }
    el.message.value = "";
  };

  connect();
})();
