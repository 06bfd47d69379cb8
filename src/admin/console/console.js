// zimfleet console: polls /api/summary (counts, charts) and the visible page of
// /api/accounts; follows /events?messages=true for live changes (batched, one repaint per
// 200 ms); acts through the JSON API. The token, when the face asks for one, lives in this
// tab's sessionStorage and goes out only as an Authorization header; /events opens with a
// single-use ticket.
(function () {
  "use strict";
  var TOKEN_KEY = "zimfleet.admin.token";
  var PER_PAGE = 100;
  var KEPT = 900;
  var CONN_STATES = ["Disconnected", "Connecting", "Connected", "Reconnecting"];
  var CONN_EVENTS = ["Success", "ActiveLogin", "LoginTimeout", "LoginInterrupted", "KickedOut",
    "TokenExpired", "Unregistered"];
  var ROOM_STATES = ["Disconnected", "Connecting", "Connected"];
  var ROOM_EVENTS = ["Success", "NetworkInterrupted", "NetworkDisconnected", "RoomNotExist",
    "ActiveCreate", "CreateFailed", "ActiveEnter", "EnterFailed", "KickedOut", "ConnectTimeout",
    "KickedOutByOtherDevice", "ActiveSwitch", "SwitchFailed"];

  var S = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    needsToken: false,
    offset: 0, state: "", q: "", matched: 0,
    rows: {}, order: [], pending: {}, flushTimer: null,
    room: "", since: 0, lost: 0, socketReconnects: 0,
    series: { ts: [], connected: [], reconnecting: [], ended: [], logins: [], reconnects: [],
      messages_in: [], messages_out: [] },
    charts: null, socket: null, retry: 0, timers: []
  };

  function $(id) { return document.getElementById(id); }
  function name(list, n) { return (list[n] || "Unknown") + "(" + n + ")"; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ago(ms) {
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    var t = new Date(ms).toLocaleTimeString();
    if (s < 60) return t + " (" + s + " s ago)";
    if (s < 3600) return t + " (" + Math.floor(s / 60) + " min ago)";
    return t + " (" + Math.floor(s / 3600) + " h ago)";
  }

  function api(method, path, body) {
    var headers = {};
    if (S.token) headers.Authorization = "Bearer " + S.token;
    var init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      if (r.status === 401) {
        showLogin(S.token ? "That token was refused." : "");
        throw new Error("401");
      }
      return r.json().then(function (j) { return { status: r.status, body: j }; });
    });
  }

  // ---- login ---------------------------------------------------------------------------
  function showLogin(message) {
    stopAll();
    $("main").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token-input").focus();
  }

  $("login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    S.token = $("token-input").value.trim();
    $("token-input").value = "";
    sessionStorage.setItem(TOKEN_KEY, S.token);
    boot();
  });

  $("forget").addEventListener("click", function () {
    sessionStorage.removeItem(TOKEN_KEY);
    S.token = "";
    showLogin("");
  });

  function stopAll() {
    S.timers.forEach(clearInterval);
    S.timers = [];
    if (S.socket) { S.socket.onclose = null; S.socket.close(); S.socket = null; }
  }

  function boot() {
    api("GET", "/api/summary?since=0").then(function (r) {
      S.needsToken = r.body.token;
      $("forget").hidden = !S.needsToken;
      $("login").hidden = true;
      $("main").hidden = false;
      if (!S.charts) makeCharts();
      takeSummary(r.body);
      loadAccounts();
      loadRooms();
      connect();
      S.timers.push(setInterval(pollSummary, 1000));
      S.timers.push(setInterval(loadAccounts, 5000));
      S.timers.push(setInterval(loadRooms, 5000));
      S.timers.push(setInterval(repaintSince, 1000));
    }).catch(function () {});
  }

  // ---- counts and charts ---------------------------------------------------------------
  function makeCharts() {
    S.charts = {
      accounts: ZfCharts.timeSeries($("chart-accounts"), { title: "Accounts", series: [
        { label: "connected", color: "#16a34a" }, { label: "reconnecting", color: "#d97706" },
        { label: "ended", color: "#dc2626" }] }),
      logins: ZfCharts.timeSeries($("chart-logins"), { title: "Logins and reconnects per s",
        series: [{ label: "logins/s" }, { label: "reconnects/s", color: "#d97706" }] }),
      messages: ZfCharts.timeSeries($("chart-messages"), { title: "Messages per s", series: [
        { label: "in/s", color: "#7c3aed" }, { label: "out/s", color: "#0891b2" }] })
    };
  }

  function takeSummary(body) {
    var c = body.counts;
    $("count-0").textContent = c.disconnected;
    $("count-1").textContent = c.connecting;
    $("count-2").textContent = c.connected;
    $("count-3").textContent = c.reconnecting;
    $("count-total").textContent = c.total;
    var s = body.series, all = S.series;
    Object.keys(all).forEach(function (k) {
      all[k] = all[k].concat(s[k]);
      if (all[k].length > KEPT) all[k] = all[k].slice(all[k].length - KEPT);
    });
    if (s.ts.length) S.since = s.ts[s.ts.length - 1];
    S.charts.accounts.setData(all.ts, [all.connected, all.reconnecting, all.ended]);
    S.charts.logins.setData(all.ts, [all.logins, all.reconnects]);
    S.charts.messages.setData(all.ts, [all.messages_in, all.messages_out]);
    if (body.events_lost > S.lost) markLost(body.events_lost - S.lost);
  }

  function pollSummary() {
    api("GET", "/api/summary?since=" + S.since).then(function (r) { takeSummary(r.body); })
      .catch(function () {});
  }

  function markLost(n) {
    S.lost += n;
    var lost = $("lost");
    lost.hidden = false;
    lost.textContent = S.lost + " events lost to lag";
    loadAccounts();
  }

  // ---- accounts table ------------------------------------------------------------------
  function loadAccounts() {
    var q = "/api/accounts?offset=" + S.offset + "&limit=" + PER_PAGE;
    if (S.state !== "") q += "&state=" + S.state;
    if (S.q) q += "&q=" + encodeURIComponent(S.q);
    api("GET", q).then(function (r) {
      S.matched = r.body.matched;
      S.rows = {};
      S.order = r.body.accounts.map(function (a) { S.rows[a.user_id] = a; return a.user_id; });
      S.pending = {};
      renderTable();
    }).catch(function () {});
  }

  function renderTable() {
    var body = $("accounts-body");
    var rows = S.order.map(function (id) { return renderRow(S.rows[id]); });
    body.replaceChildren.apply(body, rows);
    var last = Math.min(S.offset + PER_PAGE, S.matched);
    $("page-info").textContent = (S.matched ? S.offset + 1 : 0) + "-" + last + " of " + S.matched;
    $("prev").disabled = S.offset === 0;
    $("next").disabled = last >= S.matched;
  }

  function renderRow(a) {
    var tr = el("tr");
    tr.dataset.user = a.user_id;
    tr.appendChild(el("td", "user", a.user_id));
    tr.appendChild(el("td", "state state-" + a.state, name(CONN_STATES, a.state)));
    tr.appendChild(el("td", "event", name(CONN_EVENTS, a.last_event)));
    var since = el("td", "since", ago(a.since_ms));
    since.dataset.ms = a.since_ms;
    tr.appendChild(since);
    var rooms = el("td", "rooms");
    a.rooms.forEach(function (r) {
      var span = el("span", "room", r.room_id + " " + name(ROOM_STATES, r.state) + " " +
        name(ROOM_EVENTS, r.last_event));
      span.title = "since " + ago(r.since_ms);
      rooms.appendChild(span);
    });
    tr.appendChild(rooms);
    tr.appendChild(el("td", "ended", a.ended || ""));
    var actions = el("td", "actions");
    var out = el("button", "logout", "Log out");
    out.type = "button";
    out.onclick = function () { act(a.user_id, "logout", "Log out " + a.user_id +
      "? It leaves its rooms and stays out until the fleet restarts."); };
    var drop = el("button", "drop", "Drop link");
    drop.type = "button";
    drop.onclick = function () { act(a.user_id, "drop", "Drop the link of " + a.user_id +
      "? It goes Reconnecting and recovers by itself."); };
    actions.appendChild(out);
    actions.appendChild(drop);
    tr.appendChild(actions);
    return tr;
  }

  function repaintSince() {
    document.querySelectorAll("#accounts-body td.since").forEach(function (td) {
      td.textContent = ago(Number(td.dataset.ms));
    });
  }

  // Live changes of the visible rows: kept in `pending`, painted together.
  function patch(ev) {
    var row = S.rows[ev.account];
    if (!row) return;
    if (ev.kind === "connection") {
      row.state = ev.state;
      row.last_event = ev.event;
      row.since_ms = ev.ts_ms;
      row.ended = ev.state === 0 ? (ev.event === 0 ? "logout" :
        name(CONN_EVENTS, ev.event)) : null;
    } else if (ev.kind === "room") {
      var room = row.rooms.filter(function (r) { return r.room_id === ev.room_id; })[0];
      if (!room) { room = { room_id: ev.room_id }; row.rooms.push(room); }
      room.state = ev.state;
      room.last_event = ev.event;
      room.since_ms = ev.ts_ms;
    } else {
      return;
    }
    S.pending[ev.account] = true;
    if (!S.flushTimer) S.flushTimer = setTimeout(flush, 200);
  }

  function flush() {
    S.flushTimer = null;
    Object.keys(S.pending).forEach(function (id) {
      var old = document.querySelector("#accounts-body tr[data-user=\"" + CSS.escape(id) + "\"]");
      if (old && S.rows[id]) old.replaceWith(renderRow(S.rows[id]));
    });
    S.pending = {};
  }

  $("filter-state").addEventListener("change", function () {
    S.state = this.value; S.offset = 0; loadAccounts();
  });
  var searchTimer = null;
  $("search").addEventListener("input", function () {
    var v = this.value.trim();
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { S.q = v; S.offset = 0; loadAccounts(); }, 250);
  });
  $("prev").addEventListener("click", function () {
    S.offset = Math.max(0, S.offset - PER_PAGE); loadAccounts();
  });
  $("next").addEventListener("click", function () { S.offset += PER_PAGE; loadAccounts(); });

  // ---- actions with a confirm ----------------------------------------------------------
  function confirmed(text) {
    return new Promise(function (resolve) {
      var d = $("confirm");
      $("confirm-text").textContent = text;
      $("confirm-yes").onclick = function () { d.close(); resolve(true); };
      $("confirm-no").onclick = function () { d.close(); resolve(false); };
      d.showModal();
    });
  }

  function act(user, what, text) {
    confirmed(text).then(function (yes) {
      if (!yes) return;
      api("POST", "/api/accounts/" + encodeURIComponent(user) + "/" + what).then(function (r) {
        $("action-result").textContent = r.status === 200 ? what + " " + user + ": done" :
          what + " " + user + ": " + (r.body.code ? r.body.code + " " : "") + r.body.error;
      }).catch(function () {});
    });
  }

  // ---- room view -----------------------------------------------------------------------
  function loadRooms() {
    api("GET", "/api/rooms").then(function (r) {
      var select = $("room-select");
      var ids = r.body.rooms.map(function (x) { return x.room_id; });
      var have = Array.prototype.map.call(select.options, function (o) { return o.value; });
      if (ids.join("\n") !== have.join("\n")) {
        select.replaceChildren.apply(select, r.body.rooms.map(function (x) {
          var o = el("option", "", x.room_id + " (" + x.inside + " in)");
          o.value = x.room_id;
          return o;
        }));
        if (S.room && ids.indexOf(S.room) >= 0) select.value = S.room;
      }
      if (!S.room && ids.length) {
        // Open the room with the most of the fleet's accounts in it.
        var busiest = r.body.rooms.slice().sort(function (x, y) { return y.inside - x.inside; });
        S.room = busiest[0].room_id;
        select.value = S.room;
        openRoom();
      }
      else if (S.room) openRoom();
    }).catch(function () {});
  }

  $("room-select").addEventListener("change", function () { S.room = this.value; openRoom(); });

  function openRoom() {
    var room = S.room;
    api("GET", "/api/rooms/" + encodeURIComponent(room)).then(function (r) {
      if (room !== S.room || r.status !== 200) return;
      var as = $("post-as"), previous = as.value;
      as.replaceChildren.apply(as, r.body.accounts.map(function (a) {
        var o = el("option", "", a.user_id + " " + name(ROOM_STATES, a.room_state));
        o.value = a.user_id;
        return o;
      }));
      if (previous) as.value = previous;
      if (!as.value && as.options.length) as.selectedIndex = 0;
      $("room-accounts").replaceChildren.apply($("room-accounts"), r.body.accounts.map(
        function (a) { return el("li", "", a.user_id + " " + name(ROOM_STATES, a.room_state)); }));
      var list = $("messages");
      list.replaceChildren.apply(list, r.body.messages.map(messageItem));
      list.scrollTop = list.scrollHeight;
    }).catch(function () {});
    loadMembers();
  }

  function loadMembers() {
    var room = S.room;
    api("GET", "/api/rooms/" + encodeURIComponent(room) + "/members").then(function (r) {
      if (room !== S.room) return;
      var ul = $("members");
      if (r.status !== 200) {
        $("members-seen-by").textContent = r.body.error;
        ul.replaceChildren();
        return;
      }
      $("members-seen-by").textContent = "(" + r.body.members.length + ", as " +
        r.body.seen_by + " sees them)";
      ul.replaceChildren.apply(ul, r.body.members.map(function (m) {
        return el("li", "", m.user_id + (m.user_name ? " (" + m.user_name + ")" : ""));
      }));
    }).catch(function () {});
  }

  function messageItem(rec) {
    var m = rec.message;
    var li = el("li", "message");
    li.dataset.id = m.message_id;
    li.appendChild(el("span", "from", m.from));
    li.appendChild(el("span", "body", m.body));
    li.appendChild(el("span", "meta", "seq " + (m.seq === undefined ? "-" : m.seq) +
      ", id " + m.message_id + ", " + new Date(rec.ts_ms).toLocaleTimeString()));
    return li;
  }

  function takeMessage(rec) {
    var m = rec.message;
    if (m.conv_type !== 1 || m.conv_id !== S.room) return;
    var list = $("messages");
    if (list.querySelector("li[data-id=\"" + m.message_id + "\"]")) return;
    list.appendChild(messageItem(rec));
    while (list.children.length > 50) list.removeChild(list.firstChild);
    list.scrollTop = list.scrollHeight;
  }

  $("post-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var as = $("post-as").value, text = $("post-text").value;
    if (!as || !S.room || !text) return;
    var path = "/api/accounts/" + encodeURIComponent(as) + "/rooms/" +
      encodeURIComponent(S.room) + "/messages";
    api("POST", path, { text: text }).then(function (r) {
      if (r.status === 200) {
        $("post-text").value = "";
        $("post-result").textContent = "sent as " + as + ": message_id " + r.body.message_id +
          ", seq " + r.body.seq;
      } else {
        $("post-result").textContent = "not sent: " + (r.body.code ? r.body.code + " " +
          r.body.code_name + ": " : "") + r.body.error;
      }
    }).catch(function () {});
  });

  // ---- the live socket -----------------------------------------------------------------
  function setLive(text, cls) {
    var live = $("live-state");
    live.textContent = text;
    live.className = "live-state " + cls;
  }

  function connect() {
    var open = function (ticket) {
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
        "/events?messages=true" + (ticket ? "&ticket=" + encodeURIComponent(ticket) : "");
      var ws = new WebSocket(url);
      S.socket = ws;
      ws.onopen = function () {
        if (S.retry > 0 || S.socketReconnects > 0) loadAccounts();
        S.retry = 0;
        setLive("live", "on");
      };
      ws.onmessage = function (m) {
        var ev;
        try { ev = JSON.parse(m.data); } catch (e) { return; }
        if (ev.kind === "events_lost") markLost(ev.lost);
        else if (ev.kind === "message") takeMessage(ev);
        else patch(ev);
      };
      ws.onclose = function () {
        S.socket = null;
        var delay = Math.min(10000, 500 * Math.pow(2, S.retry)) * (0.8 + Math.random() * 0.4);
        S.retry += 1;
        S.socketReconnects += 1;
        var note = $("reconnects");
        note.hidden = false;
        note.textContent = "socket reconnects: " + S.socketReconnects;
        setLive("reconnecting in " + Math.round(delay / 1000) + " s", "off");
        setTimeout(function () { if (!$("main").hidden) connect(); }, delay);
      };
    };
    if (!S.needsToken) { open(""); return; }
    api("POST", "/api/tickets").then(function (r) { open(r.body.ticket); })
      .catch(function () {});
  }

  window.zfConsole = { state: S, charts: function () { return S.charts; } };
  boot();
})();
