/* The agent console: one socket to /ws/agent/ (protocol in docs/agent-protocol.md),
 * the inbox on the left and the open conversation on the right.
 *
 * Page data comes from the `console-data` JSON script; every text from the server is put in the
 * page with textContent, never as markup. Replies and notes carry a client_id and are re-sent
 * after a reconnect until acked (the server stores each client_id once).
 */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("console-data").textContent);
  var ME = DATA.me;
  var TEAMS = DATA.teams || {};
  var CANNED = DATA.canned || [];
  var TENANT_NAMES = {};
  var BOT_LANGUAGES = {}; // store slug -> the languages its bot answers in (none listed: every one)
  (DATA.tenants || []).forEach(function (t) { TENANT_NAMES[t.slug] = t.name; BOT_LANGUAGES[t.slug] = t.languages || []; });
  var MANY_STORES = (DATA.tenants || []).length > 1;
  var SPEAKS = DATA.speaks || {}; // store slug -> the languages this agent answers in
  var LANGUAGE_TERM = /(?:^|\s)lang:([a-z]{2,3})(?=\s|$)/i;

  var MAX_TEXT = 2000;
  var TYPING_IDLE_MS = 3000;
  var TYPING_REPEAT_MS = 2500;
  var VISITOR_TYPING_TTL_MS = 8000;
  var SEARCH_DELAY_MS = 250;
  var CLOSE_UNAUTHENTICATED = 4401;
  var EMPTY_TEXT = {
    mine: "No conversations are assigned to you.",
    unassigned: "Nobody is waiting for a person right now.",
    all: "No open conversations.",
    resolved: "No resolved conversations yet.",
  };
  var SENDER_NAMES = { visitor: "Visitor", bot: "Assistant", system: "System" };

  var $ = function (id) { return document.getElementById(id); };
  var ui = {
    conn: $("conn"), connText: document.querySelector("#conn .conn-text"),
    list: $("conv-list"), empty: $("inbox-empty"), emptyText: $("inbox-empty-text"), search: $("inbox-search"),
    tabs: Array.prototype.slice.call(document.querySelectorAll(".tab")),
    paneEmpty: $("pane-empty"), thread: $("thread"), alert: $("alert"), alertText: $("alert-text"),
    alertClose: $("alert-close"), avatar: $("thread-avatar"), name: $("thread-name"), sub: $("thread-sub"),
    actions: document.querySelector(".thread-actions"), reassign: $("reassign"),
    transcript: $("transcript"), typingLine: $("typing-line"), suggestions: $("suggestions"),
    box: $("composer-box"), modes: Array.prototype.slice.call(document.querySelectorAll(".mode")),
    hint: $("composer-hint"), input: $("composer-input"), send: $("send"), canned: $("canned-menu"),
  };

  var state = {
    socket: null, attempts: 0, retryTimer: null,
    tab: "all", q: "",
    convs: new Map(), // id -> CONV of every conversation heard of
    open: new Map(), // id -> CONV of the open ones (for the tab counts)
    serverCounts: DATA.counts || null, // the server's tab counts, when it sent some
    countsBase: null, // what the known open conversations gave when it did
    list: [], // ids shown in the current tab, by need
    rows: new Map(), // id -> row element
    current: null, // the open conversation's id
    loaded: false, // its transcript arrived
    shown: new Map(), // message id -> element, of the open conversation
    outbox: new Map(), // client_id -> {frame, el, failed}
    drafts: new Map(), // conversation id -> unsent text
    mode: "reply",
    suggestions: [], suggestionUsed: null,
    visitorTyping: new Map(), // conversation id -> timer
    typingOn: false, typingSentAt: 0, typingTimer: null, typingConv: null,
    canned: { open: false, items: [], index: 0, token: null },
    searchTimer: null,
  };

  // --- small helpers ------------------------------------------------------------------

  /** An element; `props.text` becomes textContent, other props attributes; children are nodes or strings. */
  function h(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      var value = props[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  var SVG_NS = "http://www.w3.org/2000/svg";
  var ICONS = {
    clock: "M8 2a6 6 0 1 0 0 12A6 6 0 0 0 8 2zM8 4.8v3.4l2.2 1.4",
    up: "M5 7.2V14H2.5V7.2H5zm0 0L8 1.8c1 0 1.8.9 1.6 1.9L9.2 6.2h3.6a1.5 1.5 0 0 1 1.5 1.7l-.8 4.6A1.8 1.8 0 0 1 11.7 14H5",
    lock: "M5 7V5.2a3 3 0 0 1 6 0V7M3.8 7h8.4v6.8H3.8z",
  };

  /** A small stroked icon (fonts without emoji show none of those). */
  function icon(name, extraClass) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("class", "icon" + (extraClass ? " " + extraClass : ""));
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function time(iso) { return iso ? Date.parse(iso) : NaN; }

  function ago(iso) {
    var t = time(iso);
    if (isNaN(t)) return "";
    var s = Math.max(0, (Date.now() - t) / 1000);
    if (s < 45) return "now";
    if (s < 3600) return Math.round(s / 60) + "m";
    if (s < 86400) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }

  function clock(iso) {
    var t = time(iso);
    if (isNaN(t)) return "";
    var d = new Date(t);
    var sameDay = d.toDateString() === new Date().toDateString();
    var hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return sameDay ? hm : d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm;
  }

  function pct(x) { return typeof x === "number" ? Math.round(x * 100) + "%" : ""; }
  function num(x, digits) { return typeof x === "number" ? x.toFixed(digits === undefined ? 2 : digits) : ""; }

  function visitorLabel(conv) {
    var v = conv.visitor || {};
    return v.name || ("Visitor " + v.id);
  }

  function initial(conv) {
    var v = conv.visitor || {};
    return (v.email || v.name || "V").trim().charAt(0).toUpperCase() || "V";
  }

  function isMine(conv) { return conv.status === "human" && conv.assignee && conv.assignee.id === ME.id; }
  function heldByOther(conv) { return conv.status === "human" && conv.assignee && conv.assignee.id !== ME.id; }
  function currentConv() { return state.current === null ? null : state.convs.get(state.current) || null; }

  // --- the socket -----------------------------------------------------------------------

  function setConn(kind, text) {
    if (!ui.conn) return;
    ui.conn.setAttribute("data-state", kind);
    ui.connText.textContent = text;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws;
    try {
      ws = new WebSocket(scheme + location.host + DATA.socket_path);
    } catch (err) {
      scheduleReconnect();
      return;
    }
    state.socket = ws;
    setConn(state.attempts ? "offline" : "connecting", state.attempts ? "Reconnecting…" : "Connecting…");
    ws.addEventListener("open", function () {
      if (state.socket !== ws) return;
      state.attempts = 0;
      setConn("online", "Live");
      afterConnect();
    });
    ws.addEventListener("message", function (event) {
      if (state.socket !== ws) return;
      var frame;
      try { frame = JSON.parse(event.data); } catch (err) { return; }
      if (frame && typeof frame.type === "string") handle(frame);
    });
    ws.addEventListener("close", function (event) {
      if (state.socket !== ws) return;
      state.socket = null;
      state.typingOn = false;
      if (event.code === CLOSE_UNAUTHENTICATED) {
        setConn("offline", "Logged out");
        location.assign(DATA.login_url);
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimeout(state.retryTimer);
    var delay = Math.min(30000, 500 * Math.pow(2, state.attempts)) * (0.75 + Math.random() * 0.5);
    state.attempts += 1;
    setConn("offline", "Reconnecting…");
    state.retryTimer = setTimeout(connect, delay);
  }

  function connected() { return state.socket !== null && state.socket.readyState === WebSocket.OPEN; }

  function sendFrame(frame) {
    if (!connected()) return false;
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  /** The server sends the `all` inbox by itself; ask for the rest of what the page shows. */
  function afterConnect() {
    if (state.tab !== "all" || state.q) requestInbox();
    if (state.current !== null) sendFrame({ type: "open", conversation: state.current });
    state.outbox.forEach(function (entry) { if (!entry.failed) sendFrame(entry.frame); });
  }

  function handle(frame) {
    switch (frame.type) {
      case "inbox": onInbox(frame); break;
      case "conversation": upsert(frame.conversation); break;
      case "message": onMessage(frame.conversation, frame.message); break;
      case "transcript": onTranscript(frame); break;
      case "ack": onAck(frame); break;
      case "typing": onTyping(frame); break;
      case "suggestions": if (frame.conversation === state.current) showSuggestions(frame.suggestions); break;
      case "feedback": onFeedback(frame); break;
      case "email": onEmail(frame); break;
      case "error": onError(frame); break;
    }
  }

  // --- the inbox --------------------------------------------------------------------------

  function inTab(conv, tab) {
    if (tab === "mine") return isMine(conv);
    if (tab === "unassigned") return conv.status === "waiting";
    if (tab === "resolved") return conv.status === "resolved";
    return conv.status !== "resolved";
  }

  /** A rough client-side match for conversations that arrive while a search is shown. */
  function matchesQuery(conv, q) {
    if (!q) return true;
    var lang = LANGUAGE_TERM.exec(q);
    if (lang) {
      if ((conv.language || "") !== lang[1].toLowerCase()) return false;
      q = (q.slice(0, lang.index) + " " + q.slice(lang.index + lang[0].length)).trim();
      if (!q) return true;
    }
    q = q.toLowerCase();
    var v = conv.visitor || {};
    var last = (conv.last_message && conv.last_message.text) || "";
    return last.toLowerCase().indexOf(q) !== -1 || (v.email || "").toLowerCase().indexOf(q) !== -1 ||
      String(conv.id) === q || String(v.id) === q;
  }

  /** The server's order (selectors.inbox): waiting first, then unhappy visitors, then the longest wait,
   * then the most recent; resolved ones newest first. */
  function byNeed(a, b) {
    if (state.tab === "resolved") return (time(b.updated_at) - time(a.updated_at)) || (b.id - a.id);
    var keys = function (c) {
      var since = time(c.waiting_since);
      return [c.status === "waiting" ? 0 : 1, c.sentiment === "negative" ? 0 : 1, isNaN(since) ? Infinity : since,
        -(time(c.updated_at) || 0), -c.id];
    };
    var ka = keys(a), kb = keys(b);
    for (var i = 0; i < ka.length; i++) {
      if (ka[i] < kb[i]) return -1;
      if (ka[i] > kb[i]) return 1;
    }
    return 0;
  }

  function sortList() {
    state.list.sort(function (a, b) { return byNeed(state.convs.get(a), state.convs.get(b)); });
  }

  function requestInbox() {
    ui.list.setAttribute("aria-busy", "true");
    sendFrame({ type: "inbox", tab: state.tab, q: state.q });
  }

  function remember(conv) {
    state.convs.set(conv.id, conv);
    if (conv.status === "resolved") state.open.delete(conv.id);
    else state.open.set(conv.id, conv);
  }

  function onInbox(frame) {
    var q = frame.q || "";
    if (frame.resync) { setConn("online", "Live"); hideAlert(); } // live updates are back
    var convs = frame.conversations || [];
    if (frame.tab === "all" && !q) {
      state.open = new Map();
      state.serverCounts = null;
    }
    convs.forEach(remember);
    if (frame.counts) {
      // Exact counts (the list stops at the server's limit); later changes move them on.
      state.serverCounts = frame.counts;
      state.countsBase = knownCounts();
    }
    renderCounts();
    if (frame.tab !== state.tab || q !== state.q) return; // an answer to an older request
    state.list = convs.map(function (c) { return c.id; });
    ui.list.removeAttribute("aria-busy");
    renderList();
  }

  /** A conversation changed: keep the newest state and put it where it belongs in the current tab. */
  function upsert(conv) {
    if (!conv || typeof conv.id !== "number") return;
    var prev = state.convs.get(conv.id);
    if (prev && time(conv.updated_at) < time(prev.updated_at)) return; // an older frame arriving late
    remember(conv);
    var at = state.list.indexOf(conv.id);
    var fits = inTab(conv, state.tab) && (at !== -1 || matchesQuery(conv, state.q));
    if (fits && at === -1) state.list.push(conv.id);
    if (!fits && at !== -1) state.list.splice(at, 1);
    renderCounts();
    renderList();
    if (conv.id === state.current) renderThreadHead();
  }

  function knownCounts() {
    var counts = { mine: 0, unassigned: 0, all: 0 };
    state.open.forEach(function (c) {
      counts.all += 1;
      if (c.status === "waiting") counts.unassigned += 1;
      if (isMine(c)) counts.mine += 1;
    });
    return counts;
  }

  /** The tabs' counts: the open conversations known here, or the server's counts moved on by what changed since. */
  function renderCounts() {
    var counts = knownCounts();
    if (state.serverCounts) {
      var base = state.countsBase;
      Object.keys(counts).forEach(function (tab) {
        var server = state.serverCounts[tab];
        if (typeof server === "number") counts[tab] = Math.max(0, server + (base ? counts[tab] - base[tab] : 0));
      });
    }
    Object.keys(counts).forEach(function (tab) {
      var node = document.querySelector('.tab-count[data-count="' + tab + '"]');
      if (!node) return;
      node.textContent = String(counts[tab]);
      if (counts[tab]) node.removeAttribute("data-zero"); else node.setAttribute("data-zero", "");
    });
    document.title = (counts.unassigned ? "(" + counts.unassigned + ") " : "") + "Inbox · Helpdesk";
  }

  function statusBadge(conv) {
    if (conv.status === "human") {
      var name = isMine(conv) ? "You" : (conv.assignee && conv.assignee.name) || "Agent";
      return h("span", { class: "badge badge-human", text: name, title: "Assigned to " + name });
    }
    if (conv.status === "resolved") {
      var label = "Resolved" + (conv.csat ? " · " + "★".repeat(conv.csat) : "");
      return h("span", { class: "badge badge-resolved", text: label, title: conv.csat ? "Rated " + conv.csat + "/5" : null });
    }
    return h("span", { class: "badge badge-" + conv.status, text: conv.status === "waiting" ? "Waiting" : "Bot" });
  }

  function countdown(seconds) {
    if (seconds < 60) return "<1m";
    if (seconds < 3600) return Math.round(seconds / 60) + "m";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m";
    return Math.floor(seconds / 86400) + "d " + Math.floor((seconds % 86400) / 3600) + "h";
  }

  /** The first-response target of the latest hand-off while no agent has answered: the time left (amber under
   * five minutes), or how long it is overdue (red). Counted in the store's business hours by the server. */
  function targetBadge(conv) {
    if (!conv.first_response_due || conv.first_response_at || (conv.status !== "waiting" && conv.status !== "human")) return null;
    var left = (time(conv.first_response_due) - Date.now()) / 1000;
    if (isNaN(left)) return null;
    var title = "First reply due " + clock(conv.first_response_due);
    if (left < 0) {
      return h("span", { class: "badge badge-negative badge-sla", "data-sla": "overdue", title: title },
        [icon("clock"), "overdue " + countdown(-left)]);
    }
    var soon = left < 300;
    return h("span", { class: "badge badge-sla " + (soon ? "badge-waiting" : "badge-bot"), "data-sla": soon ? "due-soon" : "running",
      title: title }, [icon("clock"), countdown(left) + " to reply"]);
  }

  function sentimentBadge(conv) {
    if (!conv.sentiment || conv.sentiment === "neutral") return null;
    return h("span", { class: "badge badge-" + conv.sentiment, text: conv.sentiment });
  }

  /** The visitor's language when the store's bot does not answer in it, marked when this agent speaks it;
   * a click filters the inbox by it (the search's lang:xx term works for any language). */
  function languageBadge(conv) {
    if (!conv.language || (BOT_LANGUAGES[conv.tenant] || []).indexOf(conv.language) !== -1) return null;
    var code = conv.language.toUpperCase();
    var mine = (SPEAKS[conv.tenant] || []).indexOf(conv.language) !== -1;
    var speakers = (TEAMS[conv.tenant] || []).filter(function (m) { return (m.languages || []).indexOf(conv.language) !== -1; })
      .map(function (m) { return m.id === ME.id ? "you" : m.name; });
    var title = "Writes " + code + (speakers.length ? "; speaks it: " + speakers.join(", ") : "; nobody in the team lists it") +
      ". Click to show only " + code + " conversations.";
    return h("span", { class: "badge badge-lang" + (mine ? " badge-lang-speaks" : ""), "data-lang-filter": conv.language,
      title: title, text: code + (mine ? " ✓ you speak it" : "") });
  }

  function rowParts(conv) {
    var v = conv.visitor || {};
    var last = conv.last_message;
    var typing = state.visitorTyping.has(conv.id);
    var lastText;
    if (typing) lastText = h("span", { class: "conv-text conv-typing", text: "typing…" });
    else if (last) {
      var who = { bot: "Bot: ", agent: "Agent: ", system: "", visitor: "" }[last.sender] || "";
      lastText = h("span", { class: "conv-text", text: who + last.text });
    } else lastText = h("span", { class: "conv-text", text: "No messages yet" });
    var unread = conv.id !== state.current && conv.unread > 0 ?
      h("span", { class: "unread", text: String(conv.unread), "aria-label": conv.unread + " unread" }) : null;
    var waited = conv.waiting_since && conv.status !== "resolved" ?
      h("span", { class: "badge badge-wait", title: "Waiting since " + clock(conv.waiting_since) }, [icon("clock"), ago(conv.waiting_since)]) : null;
    var reason = conv.handoff_reason && (conv.status === "waiting" || conv.status === "human") ?
      h("span", { class: "badge badge-reason", text: conv.handoff_reason, title: "Hand-off: " + conv.handoff_reason }) : null;
    var store = MANY_STORES ? h("span", { class: "badge badge-store", text: conv.tenant_name || TENANT_NAMES[conv.tenant] || conv.tenant }) : null;
    return [
      h("span", { class: "avatar", "aria-hidden": "true", text: initial(conv) }),
      h("span", { class: "conv-main" }, [
        h("span", { class: "conv-top" }, [
          h("span", { class: "conv-name", text: visitorLabel(conv) }),
          h("span", { class: "conv-time", text: ago((last && last.at) || conv.updated_at) }),
        ]),
        v.email ? h("span", { class: "conv-email", text: v.email }) : null,
        h("span", { class: "conv-last" }, [lastText, unread]),
        h("span", { class: "conv-tags" }, [statusBadge(conv), targetBadge(conv), sentimentBadge(conv), languageBadge(conv), waited, reason, store]),
      ]),
    ];
  }

  function renderRow(conv) {
    var row = state.rows.get(conv.id);
    if (!row) {
      row = h("li", { class: "conv", tabindex: "0", role: "button" });
      row.setAttribute("data-id", String(conv.id));
      state.rows.set(conv.id, row);
    }
    row.setAttribute("data-status", conv.status);
    if (conv.unread > 0 && conv.id !== state.current) row.setAttribute("data-unread", ""); else row.removeAttribute("data-unread");
    if (conv.id === state.current) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    row.setAttribute("aria-label", visitorLabel(conv) + ", " + conv.status);
    row.replaceChildren.apply(row, rowParts(conv));
    return row;
  }

  function renderList() {
    sortList();
    var wanted = state.list.map(function (id) { return renderRow(state.convs.get(id)); });
    var keep = new Set(wanted);
    Array.prototype.slice.call(ui.list.children).forEach(function (child) { if (!keep.has(child)) child.remove(); });
    wanted.forEach(function (row, i) {
      if (ui.list.children[i] !== row) ui.list.insertBefore(row, ui.list.children[i] || null);
    });
    state.rows.forEach(function (row, id) { if (!keep.has(row)) state.rows.delete(id); });
    ui.empty.hidden = wanted.length > 0;
    ui.emptyText.textContent = state.q ? "No conversations match “" + state.q + "”." : EMPTY_TEXT[state.tab];
  }

  function selectTab(tab) {
    if (state.tab === tab) return;
    state.tab = tab;
    ui.tabs.forEach(function (t) { t.setAttribute("aria-selected", String(t.getAttribute("data-tab") === tab)); });
    // Show what is known at once; the server's answer replaces it.
    state.list = [];
    if (tab !== "resolved") {
      state.open.forEach(function (c) { if (inTab(c, tab) && matchesQuery(c, state.q)) state.list.push(c.id); });
    }
    renderList();
    requestInbox();
  }

  // --- the conversation -------------------------------------------------------------------

  function openConversation(id) {
    if (state.current === id) return;
    saveDraft();
    stopTyping();
    closeCanned();
    hideAlert();
    state.current = id;
    state.loaded = false;
    state.shown = new Map();
    state.suggestions = [];
    state.suggestionUsed = null;
    ui.transcript.replaceChildren(h("p", { class: "muted transcript-loading", text: "Loading the conversation…" }));
    ui.paneEmpty.hidden = true;
    ui.thread.hidden = false;
    ui.input.value = state.drafts.get(id) || "";
    setMode("reply");
    showSuggestions([]);
    renderTyping();
    if (history.replaceState) history.replaceState(null, "", "#conversation-" + id);
    var conv = state.convs.get(id);
    if (conv) {
      renderThreadHead();
      renderRow(conv);
    }
    state.rows.forEach(function (row, rowId) { if (rowId !== id) row.removeAttribute("aria-current"); });
    sendFrame({ type: "open", conversation: id });
    ui.input.focus();
  }

  function closeConversation() {
    state.current = null;
    ui.thread.hidden = true;
    ui.paneEmpty.hidden = false;
    if (history.replaceState) history.replaceState(null, "", location.pathname);
    renderList();
  }

  function onTranscript(frame) {
    var conv = frame.conversation;
    if (!conv || conv.id !== state.current) return;
    upsert(conv);
    state.loaded = true;
    state.shown = new Map();
    ui.transcript.replaceChildren();
    if (frame.summary) ui.transcript.appendChild(summaryElement(frame.summary));
    (frame.messages || []).forEach(function (m) { addMessage(m, false); });
    // Replies still on their way are shown after the stored messages.
    state.outbox.forEach(function (entry) {
      if (entry.frame.conversation === conv.id) ui.transcript.appendChild(entry.el);
    });
    showSuggestions(frame.suggestions || []);
    renderThreadHead();
    scrollToEnd(true);
  }

  /** The hand-off summary at the top of a handed-off conversation: what she wants, the details she gave,
   * her mood, what the bot did and why it handed off (chatbot/conversations/summary.py). */
  function summaryElement(sm) {
    var rows = [];
    var add = function (label, value) {
      if (!value) return;
      rows.push(h("dt", { text: label }));
      rows.push(typeof value === "string" ? h("dd", { text: value }) : h("dd", {}, [value]));
    };
    var wants = sm.wants || {};
    add("Wants", (wants.intent ? wants.intent.replace(/_/g, " ") : "") +
      (wants.message ? (wants.intent ? ": " : "") + "“" + wants.message + "”" : ""));
    var details = (sm.details || []).map(function (d) { return d.kind + " " + d.value; }).join(", ");
    add("Details", details);
    var mood = sm.mood || {};
    if (mood.turns && mood.turns.length) add("Mood", mood.turns.join(" → ") + (mood.trend !== "unknown" ? " (" + mood.trend + ")" : ""));
    var bot = sm.bot || {};
    var did = bot.replies ? bot.replies + " repl" + (bot.replies > 1 ? "ies" : "y") + (bot.fallbacks ? ", " + bot.fallbacks + " fallback" + (bot.fallbacks > 1 ? "s" : "") : "") : "no reply";
    (bot.actions || []).forEach(function (a) {
      did += "; " + a.action + " " + a.outcome + (a.state ? " (" + a.state + ")" : a.detail ? " (" + a.detail + ")" : "");
    });
    add("Bot", did + (bot.last ? ". Last: “" + bot.last + "”" : ""));
    var ho = sm.handoff || {};
    add("Handed off", (ho.label || ho.code || "") + (ho.reason && ho.reason !== ho.label ? " — " + ho.reason : ""));
    return h("details", { class: "handoff-summary", open: "" }, [
      h("summary", { text: "Hand-off summary" }),
      h("dl", {}, rows),
    ]);
  }

  function onMessage(conversationId, m) {
    if (!m) return;
    if (m.sender === "visitor") {
      clearVisitorTyping(conversationId);
      if (conversationId === state.current) showSuggestions([]); // they were for an older message
    }
    if (conversationId !== state.current || !state.loaded) return;
    addMessage(m, true);
    // Seen as it arrives: the server's unread count (other consoles, the inbox) stays true.
    if (m.sender === "visitor" && document.visibilityState === "visible") {
      sendFrame({ type: "read", conversation: conversationId });
    }
  }

  function nearEnd() {
    var t = ui.transcript;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  }

  function scrollToEnd(force) {
    if (force || nearEnd()) ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }

  /** Put a stored message in the transcript, once, in seq order (replies on their way stay last). */
  function addMessage(m, live) {
    if (state.shown.has(m.id)) return state.shown.get(m.id);
    var follow = live && nearEnd();
    var pending = live ? adoptPending(m) : null;
    var node = messageElement(m);
    state.shown.set(m.id, node);
    if (pending) {
      pending.replaceWith(node);
    } else {
      var before = null;
      Array.prototype.some.call(ui.transcript.children, function (child) {
        var seq = child.getAttribute("data-seq");
        if (child.classList.contains("msg--pending") || child.classList.contains("msg--failed") ||
            (seq !== null && Number(seq) > m.seq)) {
          before = child;
          return true;
        }
        return false;
      });
      ui.transcript.insertBefore(node, before);
    }
    if (follow) scrollToEnd(true);
    return node;
  }

  /** My own message pushed before its ack: it takes the place of the pending bubble with the same text. */
  function adoptPending(m) {
    if (m.sender !== "agent" || m.author !== ME.name) return null;
    var found = null;
    state.outbox.forEach(function (entry, clientId) {
      if (found || entry.failed || entry.frame.conversation !== state.current) return;
      if (entry.frame.text.trim() === m.text && Boolean(m.private) === (entry.frame.type === "note")) {
        found = entry.el;
        state.outbox.delete(clientId);
      }
    });
    return found;
  }

  function who(m) {
    if (m.sender === "agent") return m.author || "Agent";
    return SENDER_NAMES[m.sender] || m.sender;
  }

  function messageElement(m) {
    var note = Boolean(m.private);
    var node = h("div", { class: "msg msg--" + m.sender + (note ? " msg--note" : "") });
    node.setAttribute("data-id", String(m.id));
    node.setAttribute("data-seq", String(m.seq));
    if (m.sender === "system") {
      node.appendChild(h("div", { class: "msg-bubble", text: m.text }));
      if (m.why && m.why.handoff_reason) {
        node.appendChild(h("span", { class: "badge badge-reason", text: "Hand-off: " + m.why.handoff_reason }));
      }
      if (m.email_state) node.appendChild(emailMark(m.email_state, "transcript"));
      return node;
    }
    var meta = h("div", { class: "msg-meta" }, [
      note ? h("span", { class: "note-tag" }, [icon("lock"), "Private note"]) : null,
      h("span", { class: "msg-who", text: who(m) }),
      h("time", { datetime: m.created_at, text: clock(m.created_at) }),
      m.channel === "email" ? h("span", { class: "mail-tag", text: "by e-mail" }) : null,
      m.email_state ? emailMark(m.email_state, "reply") : null,
    ]);
    node.appendChild(meta);
    node.appendChild(h("div", { class: "msg-bubble", text: m.text }));
    if (m.sender === "visitor" && m.labels) node.appendChild(labelsElement(m.labels));
    if (m.sender === "bot") node.appendChild(botExtra(m));
    return node;
  }

  /** An e-mailed reply's (or transcript's) delivery: queued while the SMTP server has not taken it, then sent or failed. */
  var EMAIL_MARKS = {
    reply: { queued: "e-mail queued", sent: "e-mailed", failed: "e-mail failed" },
    transcript: { queued: "transcript e-mail queued", sent: "transcript e-mailed", failed: "transcript e-mail failed" },
  };

  function emailMark(emailState, kind) {
    var words = EMAIL_MARKS[kind][emailState] || emailState;
    var mark = h("span", { class: "mail-mark mail-mark--" + emailState, "data-email-kind": kind, text: words });
    mark.title = emailState === "queued" ? "The visitor was not in the chat: this goes to her e-mail address" :
      emailState === "failed" ? "The visitor's mail server refused it, or it could not be sent in time" :
        "Sent to the visitor's e-mail address";
    return mark;
  }

  function onEmail(frame) {
    if (frame.conversation !== state.current) return;
    var node = state.shown.get(frame.message_id);
    if (!node) return;
    var old = node.querySelector(".mail-mark");
    var kind = old ? old.getAttribute("data-email-kind") : (node.classList.contains("msg--system") ? "transcript" : "reply");
    var mark = emailMark(frame.email_state, kind);
    if (old) old.replaceWith(mark);
    else (node.querySelector(".msg-meta") || node).appendChild(mark);
  }

  function labelsElement(labels) {
    var chips = [];
    if (labels.intent) chips.push(h("span", { class: "chip-label", text: "intent " + labels.intent + (labels.intent_confidence != null ? " · " + pct(labels.intent_confidence) : "") }));
    if (labels.sentiment) chips.push(h("span", { class: "chip-label", text: labels.sentiment + (labels.sentiment_confidence != null ? " · " + pct(labels.sentiment_confidence) : "") }));
    return h("div", { class: "labels" }, chips);
  }

  /** A store action in a reply's why, in a line (chatbot/review/views.py action_title). */
  function actionTitle(g) {
    var params = Object.keys(g.params || {}).map(function (k) { return k + " " + g.params[k]; }).join(", ");
    var r = g.result || {};
    var found = ["state", "carrier", "tracking_number"].map(function (k) { return r[k]; }).filter(Boolean).join(" · ");
    return "store action " + g.action + ": " + (g.outcome || "") + (params ? " [" + params + "]" : "") +
      (found ? " → " + found : g.detail ? " (" + g.detail + ")" : "") +
      (g.latency_ms != null ? " · " + Math.round(g.latency_ms) + " ms" : "");
  }

  function groundingTitle(g) {
    if (g.action) return actionTitle(g);
    return g.question || g.message || (g.entry ? "Entry #" + g.entry : g.example ? "Example #" + g.example : "Source");
  }

  /** The why of a bot reply, folded to one line, and the agent's verdict on it. */
  function botExtra(m) {
    var why = m.why || {};
    var versions = why.model_versions || {};
    var versionText = Object.keys(versions).map(function (k) { return versions[k]; }).join(", ");
    var summary = [h("span", { class: "why-k", text: "Why" })];
    if (why.grounding && why.grounding.length) summary.push(h("span", { text: "· " + why.grounding.length + " source" + (why.grounding.length > 1 ? "s" : "") }));
    if (why.intent) summary.push(h("span", { text: "· " + why.intent + (why.intent_confidence != null ? " " + pct(why.intent_confidence) : "") }));
    if (why.score != null) summary.push(h("span", { text: "· score " + num(why.score) }));
    if (why.handoff_reason) summary.push(h("span", { text: "· " + why.handoff_reason }));

    var rows = [];
    var addRow = function (label, value) {
      if (value === null || value === undefined || value === "") return;
      rows.push(h("dt", { text: label }));
      rows.push(typeof value === "string" ? h("dd", { text: value }) : h("dd", {}, [value]));
    };
    if (why.grounding && why.grounding.length) {
      addRow("Grounding", h("ul", { class: "why-ground" }, why.grounding.map(function (g) {
        return h("li", {}, [
          h("span", { text: groundingTitle(g) + (g.intent ? " (" + g.intent + ")" : "") }),
          h("span", { class: "why-score", text: num(g.score) }),
        ]);
      })));
    }
    addRow("Intent", why.intent ? why.intent + (why.intent_confidence != null ? " (" + pct(why.intent_confidence) + ")" : "") : "");
    addRow("Sentiment", why.sentiment ? why.sentiment + (why.sentiment_confidence != null ? " (" + pct(why.sentiment_confidence) + ")" : "") : "");
    addRow("Score", why.score != null ? num(why.score, 3) : "");
    addRow("Model", versionText);
    addRow("Hand-off", why.handoff_reason || "");
    addRow("Latency", why.latency_ms != null ? Math.round(why.latency_ms) + " ms" : "");
    if (!rows.length) addRow("Details", "None recorded");

    var details = h("details", { class: "why" }, [
      h("summary", {}, summary),
      h("dl", { class: "why-body" }, rows),
    ]);
    var fb = h("div", { class: "fb" }, [
      h("button", { type: "button", class: "fb-btn fb-rate", "data-rating": "up", "aria-pressed": "false", title: "Good reply", "aria-label": "Good reply" }, [icon("up")]),
      h("button", { type: "button", class: "fb-btn fb-rate", "data-rating": "down", "aria-pressed": "false", title: "Bad reply", "aria-label": "Bad reply" }, [icon("up", "icon-flip")]),
      h("button", { type: "button", class: "fb-btn", "data-fb-open": "reply", "aria-expanded": "false", text: "Write the right reply" }),
      h("button", { type: "button", class: "fb-btn", "data-fb-open": "intent", "aria-expanded": "false", text: "Fix the intent" }),
      h("span", { class: "fb-status", role: "status" }),
      h("span", { class: "fb-visitor" }),
    ]);
    var replyForm = h("div", { class: "fb-form", "data-fb-form": "reply", hidden: true }, [
      h("textarea", { rows: "2", maxlength: String(MAX_TEXT), placeholder: "What the assistant should have said", "aria-label": "The right reply" }),
      h("button", { type: "button", class: "btn btn-sm btn-primary", "data-fb-save": "reply", text: "Save" }),
      h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-fb-cancel": "reply", text: "Cancel" }),
    ]);
    var intentForm = h("div", { class: "fb-form", "data-fb-form": "intent", hidden: true }, [
      h("input", { type: "text", maxlength: "100", placeholder: "e.g. order_status", "aria-label": "The right intent", spellcheck: "false" }),
      h("button", { type: "button", class: "btn btn-sm btn-primary", "data-fb-save": "intent", text: "Save" }),
      h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-fb-cancel": "intent", text: "Cancel" }),
    ]);
    intentForm.querySelector("input").value = why.intent || "";
    return h("div", { class: "bot-extra" }, [details, fb, replyForm, intentForm]);
  }

  /** The header and what the actions and composer allow; `timesOnly` just moves the clocks on. */
  function renderThreadHead(timesOnly) {
    var conv = currentConv();
    if (!conv) return;
    var v = conv.visitor || {};
    ui.avatar.textContent = initial(conv);
    ui.name.textContent = visitorLabel(conv);
    var sub = [statusBadge(conv)];
    if (v.email) sub.push(h("span", { text: v.email }));
    sub.push(h("span", { text: "#" + conv.id + " · " + (conv.tenant_name || TENANT_NAMES[conv.tenant] || conv.tenant) }));
    var sentiment = sentimentBadge(conv);
    if (sentiment) sub.push(sentiment);
    var language = languageBadge(conv);
    if (language) sub.push(language);
    if (conv.waiting_since && conv.status !== "resolved") sub.push(h("span", { class: "badge badge-wait" }, [icon("clock"), "waiting " + ago(conv.waiting_since)]));
    var target = targetBadge(conv);
    if (target) sub.push(target);
    if (conv.handoff_reason && (conv.status === "waiting" || conv.status === "human")) sub.push(h("span", { class: "badge badge-reason", text: "Hand-off: " + conv.handoff_reason }));
    ui.sub.replaceChildren.apply(ui.sub, sub);
    if (timesOnly) return;

    var resolved = conv.status === "resolved";
    var take = ui.actions.querySelector('[data-action="take_over"]');
    take.hidden = isMine(conv) || resolved;
    ui.actions.querySelector('[data-action="hand_back"]').hidden = !(conv.status === "waiting" || conv.status === "human");
    ui.actions.querySelector('[data-action="resolve"]').hidden = resolved;
    ui.reassign.parentElement.hidden = resolved;
    renderReassign(conv);
    renderComposerState(conv);
  }

  function renderReassign(conv) {
    var team = TEAMS[conv.tenant] || [];
    var options = [h("option", { value: "", text: "Reassign…" })];
    team.forEach(function (member) {
      var label = member.name + (member.id === ME.id ? " (you)" : "") + (member.role === "manager" ? " · manager" : "") +
        (conv.language && (member.languages || []).indexOf(conv.language) !== -1 ? " · speaks " + conv.language.toUpperCase() : "");
      var current = conv.status === "human" && conv.assignee && conv.assignee.id === member.id;
      options.push(h("option", { value: String(member.id), disabled: current, text: label + (current ? " ✓" : "") }));
    });
    ui.reassign.replaceChildren.apply(ui.reassign, options);
    ui.reassign.value = "";
  }

  function renderComposerState(conv) {
    var replyAllowed = conv.status !== "resolved" && !heldByOther(conv);
    var replyMode = ui.modes.filter(function (b) { return b.getAttribute("data-mode") === "reply"; })[0];
    replyMode.disabled = !replyAllowed;
    if (!replyAllowed && state.mode === "reply") setMode("note");
    var hint = "";
    if (conv.status === "resolved") hint = "Resolved: the visitor's next message reopens it. Notes only.";
    else if (heldByOther(conv)) hint = (conv.assignee.name || "Another agent") + " is handling this conversation. Notes only.";
    else if (conv.status !== "human") hint = "Replying takes the conversation over from the " + (conv.status === "bot" ? "bot" : "queue") + ".";
    ui.hint.textContent = hint;
  }

  function setMode(mode) {
    state.mode = mode;
    ui.box.setAttribute("data-mode", mode);
    ui.modes.forEach(function (b) { b.setAttribute("aria-pressed", String(b.getAttribute("data-mode") === mode)); });
    ui.input.placeholder = mode === "note" ?
      "Write a private note: only your team sees it" : "Reply to the visitor…  Type / for canned replies";
    ui.send.textContent = mode === "note" ? "Add note" : "Send";
    if (mode === "note") stopTyping();
  }

  // --- alerts -------------------------------------------------------------------------------

  function showAlert(text) {
    ui.alertText.textContent = text;
    ui.alert.hidden = false;
  }

  function hideAlert() { ui.alert.hidden = true; }

  function onError(frame) {
    var detail = frame.detail || "Something went wrong.";
    // The server lost its live feed (Redis): the socket stays up, and a `resync` inbox follows it.
    if (frame.code === "unavailable" && !frame.client_id) setConn("offline", "Live updates interrupted");
    if (frame.client_id && state.outbox.has(frame.client_id)) {
      var entry = state.outbox.get(frame.client_id);
      entry.failed = true;
      markFailed(entry, detail);
    }
    if (frame.code === "not_found" && frame.conversation !== undefined && frame.conversation === state.current) {
      closeConversation();
      showAlert("This conversation is gone, or it belongs to a store you are not in.");
      return;
    }
    if (frame.conversation !== undefined && frame.conversation !== state.current) return;
    showAlert(detail);
  }

  // --- sending --------------------------------------------------------------------------------

  function pendingElement(frame) {
    var note = frame.type === "note";
    var node = h("div", { class: "msg msg--agent msg--pending" + (note ? " msg--note" : "") }, [
      h("div", { class: "msg-meta" }, [
        note ? h("span", { class: "note-tag" }, [icon("lock"), "Private note"]) : null,
        h("span", { class: "msg-who", text: ME.name }),
      ]),
      h("div", { class: "msg-bubble", text: frame.text }),
      h("div", { class: "msg-state", text: "Sending…" }),
    ]);
    node.setAttribute("data-client-id", frame.client_id);
    return node;
  }

  function markFailed(entry, detail) {
    var node = entry.el;
    node.classList.remove("msg--pending");
    node.classList.add("msg--failed");
    var status = node.querySelector(".msg-state");
    status.replaceChildren(
      h("span", { text: "Not sent: " + detail }),
      h("button", { type: "button", class: "linkish", "data-outbox": "retry", text: "Retry" }),
      h("button", { type: "button", class: "linkish", "data-outbox": "discard", text: "Discard" })
    );
  }

  function sendComposer() {
    var conv = currentConv();
    if (!conv) return;
    var text = ui.input.value.trim();
    if (!text) return;
    if (text.length > MAX_TEXT) {
      showAlert("The message is longer than " + MAX_TEXT + " characters; shorten it.");
      return;
    }
    var frame = { type: state.mode === "note" ? "note" : "message", conversation: conv.id, text: text, client_id: newClientId() };
    if (frame.type === "message" && state.suggestionUsed !== null) frame.suggestion = state.suggestionUsed;
    var entry = { frame: frame, el: pendingElement(frame), failed: false };
    state.outbox.set(frame.client_id, entry);
    ui.transcript.appendChild(entry.el);
    scrollToEnd(true);
    sendFrame(frame);
    ui.input.value = "";
    state.drafts.delete(conv.id);
    closeCanned();
    stopTyping();
    if (frame.type === "message") showSuggestions([]);
    hideAlert();
  }

  function onAck(frame) {
    if (frame.client_id !== undefined) {
      var entry = state.outbox.get(frame.client_id);
      state.outbox.delete(frame.client_id);
      var m = frame.message;
      if (!m || frame.conversation !== state.current || !state.loaded) {
        if (entry) entry.el.remove();
        return;
      }
      if (state.shown.has(m.id)) {
        if (entry) entry.el.remove();
        return;
      }
      var node = messageElement(m);
      state.shown.set(m.id, node);
      if (entry && entry.el.isConnected) entry.el.replaceWith(node);
      else addMessage(m, true);
      return;
    }
    if (frame.message_id !== undefined) applyFeedback(frame.message_id, frame.feedback || {}, "agent");
  }

  // --- typing ------------------------------------------------------------------------------------

  function mayType(conv) { return conv && conv.status !== "resolved" && !heldByOther(conv) && state.mode === "reply"; }

  function noteTyping() {
    var conv = currentConv();
    if (!mayType(conv) || !ui.input.value.trim()) {
      stopTyping();
      return;
    }
    var now = Date.now();
    if (!state.typingOn || now - state.typingSentAt > TYPING_REPEAT_MS) {
      if (sendFrame({ type: "typing", conversation: conv.id, on: true })) {
        state.typingOn = true;
        state.typingSentAt = now;
        state.typingConv = conv.id;
      }
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingOn && state.typingConv !== null) sendFrame({ type: "typing", conversation: state.typingConv, on: false });
    state.typingOn = false;
    state.typingConv = null;
  }

  function onTyping(frame) {
    if (frame.sender !== "visitor") return;
    clearVisitorTyping(frame.conversation);
    if (frame.on) {
      state.visitorTyping.set(frame.conversation, setTimeout(function () {
        clearVisitorTyping(frame.conversation);
      }, VISITOR_TYPING_TTL_MS));
    }
    refreshTyping(frame.conversation);
  }

  function clearVisitorTyping(conversationId) {
    if (!state.visitorTyping.has(conversationId)) return;
    clearTimeout(state.visitorTyping.get(conversationId));
    state.visitorTyping.delete(conversationId);
    refreshTyping(conversationId);
  }

  function refreshTyping(conversationId) {
    var conv = state.convs.get(conversationId);
    if (conv && state.rows.has(conversationId)) renderRow(conv);
    if (conversationId === state.current) renderTyping();
  }

  function renderTyping() {
    ui.typingLine.hidden = !state.visitorTyping.has(state.current);
  }

  // --- suggestions and canned replies ----------------------------------------------------------

  function showSuggestions(texts) {
    state.suggestions = (texts || []).slice(0, 3);
    state.suggestionUsed = null;
    if (!state.suggestions.length) {
      ui.suggestions.replaceChildren();
      ui.suggestions.hidden = true;
      return;
    }
    var chips = [h("span", { class: "suggestions-label", text: "Suggested" })];
    state.suggestions.forEach(function (text, i) {
      chips.push(h("button", { type: "button", class: "suggestion", "data-suggestion": String(i), "aria-pressed": "false", title: text, text: text }));
    });
    ui.suggestions.replaceChildren.apply(ui.suggestions, chips);
    ui.suggestions.hidden = false;
  }

  function useSuggestion(index) {
    var text = state.suggestions[index];
    if (text === undefined) return;
    if (ui.modes[0].disabled) return; // replying is not possible here
    setMode("reply");
    ui.input.value = text;
    state.suggestionUsed = index;
    ui.suggestions.querySelectorAll(".suggestion").forEach(function (chip) {
      chip.setAttribute("aria-pressed", String(chip.getAttribute("data-suggestion") === String(index)));
    });
    ui.input.focus();
    ui.input.setSelectionRange(text.length, text.length);
    noteTyping();
  }

  /** The `/shortcut` being typed just before the caret, if any. */
  function cannedToken() {
    var caret = ui.input.selectionStart;
    if (caret !== ui.input.selectionEnd) return null;
    var before = ui.input.value.slice(0, caret);
    var match = /(^|\s)\/([\w-]*)$/.exec(before);
    if (!match) return null;
    return { start: caret - match[2].length - 1, end: caret, query: match[2].toLowerCase() };
  }

  /** The version of a canned reply to insert in `conv`: the store's text in the conversation's language when it
   * wrote one, else its main text. {text, language, fallback: whether the conversation's language has none}. */
  function cannedVersion(reply, conv) {
    var lang = (conv && conv.language) || "";
    var translated = lang && lang !== reply.language ? (reply.translations || {})[lang] : null;
    if (typeof translated === "string" && translated.trim()) return { text: translated, language: lang, fallback: false };
    return { text: reply.text, language: reply.language || "", fallback: !!lang && lang !== reply.language };
  }

  /** Which language a menu entry inserts, where there is a choice to tell about: the reply has other versions,
   * or the conversation is in a language it has none in. */
  function cannedLanguageBadge(reply, version) {
    var versions = Object.keys(reply.translations || {}).length;
    if (!version.language || (!versions && !version.fallback)) return null;
    var code = version.language.toUpperCase();
    return h("span", {
      class: "badge badge-lang canned-lang" + (version.fallback ? " canned-lang-fallback" : ""),
      "data-lang": version.language,
      title: version.fallback ? "No version in this conversation's language: inserts the " + code + " text" : "Inserts the " + code + " version",
      text: code,
    });
  }

  function updateCanned() {
    var conv = currentConv();
    var token = conv ? cannedToken() : null;
    if (!token) return closeCanned();
    var ofStore = CANNED.filter(function (r) { return r.tenant === conv.tenant; });
    var versions = new Map(ofStore.map(function (r) { return [r, cannedVersion(r, conv)]; }));
    var starts = ofStore.filter(function (r) { return r.shortcut.indexOf(token.query) === 0; });
    var contains = ofStore.filter(function (r) {
      var text = versions.get(r).text.toLowerCase();
      return r.shortcut.indexOf(token.query) > 0 || (token.query && starts.indexOf(r) === -1 &&
        (r.text.toLowerCase().indexOf(token.query) !== -1 || text.indexOf(token.query) !== -1));
    });
    var items = starts.concat(contains.filter(function (r) { return starts.indexOf(r) === -1; })).slice(0, 8)
      .map(function (r) { return { reply: r, version: versions.get(r) }; });
    state.canned = { open: true, items: items, index: 0, token: token };
    if (!items.length) {
      ui.canned.replaceChildren(h("li", { class: "canned-none", text: ofStore.length ?
        "No canned reply matches /" + token.query : "This store has no canned replies yet." }));
    } else {
      ui.canned.replaceChildren.apply(ui.canned, items.map(function (item, i) {
        return h("li", { class: "canned-option", role: "option", "data-index": String(i), "aria-selected": String(i === 0),
          "data-lang": item.version.language || null }, [
          h("code", { text: "/" + item.reply.shortcut }),
          h("span", { text: item.version.text }),
          cannedLanguageBadge(item.reply, item.version),
        ]);
      }));
    }
    ui.canned.hidden = false;
  }

  function moveCanned(step) {
    var c = state.canned;
    if (!c.items.length) return;
    c.index = (c.index + step + c.items.length) % c.items.length;
    ui.canned.querySelectorAll(".canned-option").forEach(function (li, i) {
      li.setAttribute("aria-selected", String(i === c.index));
      if (i === c.index) li.scrollIntoView({ block: "nearest" });
    });
  }

  function insertCanned(index) {
    var c = state.canned;
    var item = c.items[index];
    if (!item || !c.token) return;
    var text = item.version.text;
    var value = ui.input.value;
    ui.input.value = value.slice(0, c.token.start) + text + value.slice(c.token.end);
    var caret = c.token.start + text.length;
    closeCanned();
    ui.input.focus();
    ui.input.setSelectionRange(caret, caret);
    noteTyping();
  }

  function closeCanned() {
    state.canned = { open: false, items: [], index: 0, token: null };
    ui.canned.hidden = true;
    ui.canned.replaceChildren();
  }

  // --- feedback on bot replies ---------------------------------------------------------------

  function applyFeedback(messageId, feedback, source) {
    var node = state.shown.get(messageId);
    if (!node) return;
    if (source === "visitor") {
      var visitor = node.querySelector(".fb-visitor");
      if (visitor) visitor.textContent = feedback.rating ? "Visitor rated it " + (feedback.rating === "up" ? "helpful" : "unhelpful") : "";
      return;
    }
    node.querySelectorAll("[data-rating]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-rating") === feedback.rating));
    });
    var saved = [];
    if (feedback.correct_reply) saved.push("right reply saved");
    if (feedback.correct_intent) saved.push("intent: " + feedback.correct_intent);
    var status = node.querySelector(".fb-status");
    if (status) status.textContent = "✓ " + (saved.length ? saved.join(" · ") : "Thanks");
    if (feedback.correct_reply) node.querySelector('[data-fb-form="reply"] textarea').value = feedback.correct_reply;
    if (feedback.correct_intent) node.querySelector('[data-fb-form="intent"] input').value = feedback.correct_intent;
    ["reply", "intent"].forEach(function (kind) { toggleFeedbackForm(node, kind, false); });
  }

  function onFeedback(frame) {
    if (frame.conversation !== state.current) return;
    var fb = frame.feedback || {};
    if (fb.source === "visitor") applyFeedback(frame.message_id, fb, "visitor");
    else if (fb.agent === ME.id) applyFeedback(frame.message_id, fb, "agent");
  }

  function toggleFeedbackForm(node, kind, open) {
    var form = node.querySelector('[data-fb-form="' + kind + '"]');
    var opener = node.querySelector('[data-fb-open="' + kind + '"]');
    if (!form || !opener) return;
    form.hidden = !open;
    opener.setAttribute("aria-expanded", String(open));
    if (open) form.querySelector("textarea, input").focus();
  }

  function onTranscriptClick(event) {
    var target = event.target;
    var msg = target.closest(".msg");
    if (!msg) return;
    var id = Number(msg.getAttribute("data-id"));
    var rating = target.closest("[data-rating]");
    if (rating) {
      sendFrame({ type: "feedback", message_id: id, rating: rating.getAttribute("data-rating") });
      return;
    }
    var opener = target.closest("[data-fb-open]");
    if (opener) {
      var kind = opener.getAttribute("data-fb-open");
      toggleFeedbackForm(msg, kind, opener.getAttribute("aria-expanded") !== "true");
      return;
    }
    var cancel = target.closest("[data-fb-cancel]");
    if (cancel) {
      toggleFeedbackForm(msg, cancel.getAttribute("data-fb-cancel"), false);
      return;
    }
    var save = target.closest("[data-fb-save]");
    if (save) {
      saveFeedback(msg, id, save.getAttribute("data-fb-save"));
      return;
    }
    var outbox = target.closest("[data-outbox]");
    if (outbox) {
      var clientId = msg.getAttribute("data-client-id");
      var entry = state.outbox.get(clientId);
      if (!entry) return;
      if (outbox.getAttribute("data-outbox") === "discard") {
        state.outbox.delete(clientId);
        msg.remove();
        return;
      }
      entry.failed = false;
      msg.classList.remove("msg--failed");
      msg.classList.add("msg--pending");
      msg.querySelector(".msg-state").replaceChildren(document.createTextNode("Sending…"));
      sendFrame(entry.frame);
    }
  }

  function saveFeedback(msg, id, kind) {
    var field = msg.querySelector('[data-fb-form="' + kind + '"] ' + (kind === "reply" ? "textarea" : "input"));
    var value = field.value.trim();
    if (!value) {
      field.focus();
      return;
    }
    var frame = { type: "feedback", message_id: id };
    if (kind === "reply") frame.correct_reply = value; else frame.correct_intent = value;
    sendFrame(frame);
  }

  // --- drafts -----------------------------------------------------------------------------------

  function saveDraft() {
    if (state.current === null) return;
    if (ui.input.value.trim()) state.drafts.set(state.current, ui.input.value);
    else state.drafts.delete(state.current);
  }

  // --- wiring -------------------------------------------------------------------------------------

  ui.tabs.forEach(function (tab) {
    tab.addEventListener("click", function () { selectTab(tab.getAttribute("data-tab")); });
  });

  ui.search.addEventListener("input", function () {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(function () {
      var q = ui.search.value.trim();
      if (q === state.q) return;
      state.q = q;
      requestInbox();
    }, SEARCH_DELAY_MS);
  });

  ui.list.addEventListener("click", function (event) {
    var lang = event.target.closest("[data-lang-filter]");
    if (lang) {
      ui.search.value = "lang:" + lang.getAttribute("data-lang-filter");
      ui.search.dispatchEvent(new Event("input"));
      return;
    }
    var row = event.target.closest(".conv");
    if (row) openConversation(Number(row.getAttribute("data-id")));
  });
  ui.list.addEventListener("keydown", function (event) {
    var row = event.target.closest(".conv");
    if (!row) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openConversation(Number(row.getAttribute("data-id")));
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      var next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
      if (next) next.focus();
    }
  });

  ui.actions.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || state.current === null) return;
    hideAlert();
    sendFrame({ type: button.getAttribute("data-action"), conversation: state.current });
  });

  ui.reassign.addEventListener("change", function () {
    var agent = Number(ui.reassign.value);
    if (!agent || state.current === null) return;
    hideAlert();
    sendFrame({ type: "reassign", conversation: state.current, agent: agent });
    ui.reassign.value = "";
  });

  ui.alertClose.addEventListener("click", hideAlert);

  ui.modes.forEach(function (button) {
    button.addEventListener("click", function () {
      if (button.disabled) return;
      setMode(button.getAttribute("data-mode"));
      ui.input.focus();
    });
  });

  ui.input.addEventListener("input", function () {
    updateCanned();
    noteTyping();
    if (!ui.input.value.trim()) state.suggestionUsed = null;
  });
  ui.input.addEventListener("click", updateCanned);
  ui.input.addEventListener("blur", function () {
    setTimeout(function () { if (document.activeElement !== ui.input) closeCanned(); }, 150);
  });
  ui.input.addEventListener("keydown", function (event) {
    if (event.isComposing) return;
    if (state.canned.open) {
      var hasItems = state.canned.items.length > 0;
      if (event.key === "ArrowDown" && hasItems) { event.preventDefault(); moveCanned(1); return; }
      if (event.key === "ArrowUp" && hasItems) { event.preventDefault(); moveCanned(-1); return; }
      if ((event.key === "Enter" || event.key === "Tab") && hasItems && !event.shiftKey) {
        event.preventDefault();
        insertCanned(state.canned.index);
        return;
      }
      if (event.key === "Escape") { event.preventDefault(); closeCanned(); return; }
    }
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      sendComposer();
    }
  });

  ui.canned.addEventListener("mousedown", function (event) { event.preventDefault(); }); // keep the caret
  ui.canned.addEventListener("click", function (event) {
    var option = event.target.closest(".canned-option");
    if (option) insertCanned(Number(option.getAttribute("data-index")));
  });

  ui.send.addEventListener("click", function () { sendComposer(); ui.input.focus(); });
  ui.suggestions.addEventListener("click", function (event) {
    var chip = event.target.closest("[data-suggestion]");
    if (chip) useSuggestion(Number(chip.getAttribute("data-suggestion")));
  });
  ui.transcript.addEventListener("click", onTranscriptClick);
  ui.transcript.addEventListener("keydown", function (event) {
    var form = event.target.closest("[data-fb-form]");
    if (!form || event.key !== "Enter" || event.shiftKey) return;
    event.preventDefault();
    var msg = form.closest(".msg");
    saveFeedback(msg, Number(msg.getAttribute("data-id")), form.getAttribute("data-fb-form"));
  });

  function reconnectNow() {
    if (connected()) return;
    var stale = state.socket;
    state.socket = null;
    if (stale) stale.close();
    state.attempts = 0;
    connect();
  }
  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", function () { if (state.socket) state.socket.close(); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });
  window.addEventListener("beforeunload", stopTyping);

  // Times ("4m", "waiting 2h") move on without frames.
  setInterval(function () {
    state.list.forEach(function (id) { renderRow(state.convs.get(id)); });
    if (state.current !== null) renderThreadHead(true);
  }, 30000);

  var linked = /^#conversation-(\d+)$/.exec(location.hash);
  if (linked) openConversation(Number(linked[1]));
  renderCounts();
  renderList();
  ui.empty.hidden = true;
  connect();
})();
