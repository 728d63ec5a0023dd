/* mmbot's web cockpit: renders the run's /api/state (live through /api/stream) and sends the
   operator's pause / resume / cancel-all with the run's token. Hand-written, no build step, nothing
   fetched from anywhere but the run itself. Every value is put on the page as text (never HTML). */
"use strict";

(function () {
  const TOKEN_KEY = "mmbot-token";
  const POLL_MS = 2000;
  const STREAM_RETRY_MS = 15000;
  const CHART_POINTS = 600; // the newest points drawn; the run keeps its own bounded history

  const $ = (id) => document.getElementById(id);
  let last = null; // the latest state
  let receivedAt = 0; // browser time it came
  let source = null;
  let pollTimer = null;

  // ------------------------------------------------------------------ text helpers

  function show(value) {
    if (value === null || value === undefined || value === "") return "-";
    if (typeof value === "number" && !Number.isFinite(value)) return "-";
    const text = String(value);
    return text === "NaN" || text === "null" || text === "undefined" ? "-" : text;
  }

  function signed(value) {
    const text = show(value);
    if (text === "-" || text.startsWith("-")) return text;
    return Number(text) === 0 ? text : "+" + text;
  }

  function duration(ms) {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "-";
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return d + "d " + h + "h " + m + "m";
    if (h) return h + "h " + m + "m " + s + "s";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function clockTime(ms) {
    if (typeof ms !== "number" || !Number.isFinite(ms)) return "-";
    const d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function tone(value) { // css class for a signed decimal string
    const n = Number(value);
    if (value === null || value === undefined || !Number.isFinite(n) || n === 0) return "";
    return n > 0 ? "pos" : "neg";
  }

  function setText(id, value, cls) {
    const el = $(id);
    if (!el) return;
    el.textContent = show(value);
    if (cls !== undefined) el.className = cls;
  }

  function cell(row, value, cls, attrs) {
    const td = document.createElement("td");
    td.textContent = show(value);
    if (cls) td.className = cls;
    if (attrs) for (const k in attrs) td.setAttribute(k, attrs[k]);
    row.appendChild(td);
    return td;
  }

  function fillBody(tableId, rows, columns, emptyText) {
    const body = $(tableId).tBodies[0];
    const out = document.createDocumentFragment();
    for (const item of rows) {
      const tr = document.createElement("tr");
      for (const col of columns) cell(tr, col[0](item), col[1] ? col[1](item) : "");
      out.appendChild(tr);
    }
    if (!rows.length && emptyText) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      cell(tr, emptyText, "muted", { colspan: String(columns.length) });
      out.appendChild(tr);
    }
    body.replaceChildren(out);
  }

  function pairs(obj) { // {"a": 1} -> "a 1 · b 2"
    const keys = Object.keys(obj || {});
    return keys.length ? keys.map((k) => k + " " + show(obj[k])).join(" · ") : "none";
  }

  // ------------------------------------------------------------------ rendering

  function render(state) {
    last = state;
    receivedAt = Date.now();
    renderHeader(state);
    renderTotals(state);
    renderChart(state);
    renderPositions(state);
    renderOrders(state);
    renderFills(state);
    renderFeeds(state);
    renderRisk(state);
    renderNotices(state);
  }

  function renderHeader(s) {
    const badge = $("status-badge");
    let text = "QUOTING", cls = "badge badge-ok";
    if (s.halted) { text = "HALTED"; cls = "badge badge-bad"; }
    else if (s.paused) { text = "PAUSED"; cls = "badge badge-warn"; }
    else if (s.gate_open === false) { text = "GATE CLOSED"; cls = "badge badge-warn"; }
    badge.textContent = text;
    badge.className = cls;
    setText("mode", s.mode);
    setText("uptime", s.started_ms ? duration(s.now_ms - s.started_ms) : "-");
    setText("now", clockTime(s.now_ms));
    const health = s.health || {};
    const status = show(health.status);
    setText("health-status", status, "health health-" + status);
    const reasons = Array.isArray(health.reasons) ? health.reasons.filter((r) => show(r) !== "-") : [];
    setText("health-reasons", reasons.length ? reasons.join("; ") : "no problem reported");
    $("health").className = "health-line health-" + status;
    document.title = "mmbot " + text.toLowerCase() + " " + signed(s.pnl);
  }

  function renderTotals(s) {
    setText("pnl-total", signed(s.pnl), "big " + tone(s.pnl));
    setText("pnl-realised", signed(s.realised), tone(s.realised));
    setText("pnl-marked", signed(s.unrealised), tone(s.unrealised));
    setText("fees", s.fees);
    setText("cash", s.cash);
    setText("reserved", s.reserved);
    setText("start-cash", s.start_cash);
    setText("fills-count", show(s.fills) + " (" + show(s.maker_fills) + " / " + show(s.taker_fills) + ")");
    setText("orders-by-state", pairs(s.orders_by_state));
  }

  function busy(market) {
    if (Number(market.fills) > 0) return true;
    return (market.tokens || []).some((t) => Number(t.position) !== 0 || (t.quotes || []).length > 0);
  }

  function renderPositions(s) {
    const markets = s.markets || [];
    const showQuiet = $("show-quiet").checked;
    const shown = markets.filter((m) => showQuiet || busy(m));
    setText("quiet-count", markets.filter((m) => !busy(m)).length);
    const out = document.createDocumentFragment();
    for (const m of shown) {
      const tokens = m.tokens || [];
      tokens.forEach((t, i) => {
        const tr = document.createElement("tr");
        tr.dataset.market = show(m.market);
        if (i === 0) {
          const label = cell(tr, m.label, "market", { rowspan: String(tokens.length) });
          if (m.question) label.title = m.question;
          if (m.resolved) label.textContent += " (resolved)";
        }
        cell(tr, t.outcome);
        cell(tr, t.position, "num " + (Number(t.position) ? "held" : "muted"));
        cell(tr, t.cost, "num");
        cell(tr, t.mark, "num");
        cell(tr, t.best_bid, "num");
        cell(tr, t.best_ask, "num");
        cell(tr, t.book, "book-" + show(t.book));
        if (i === 0) {
          const span = { rowspan: String(tokens.length) };
          cell(tr, m.fills, "num", span);
          cell(tr, signed(m.realised), "num " + tone(m.realised), span);
          cell(tr, signed(m.unrealised), "num " + tone(m.unrealised), span);
          cell(tr, signed(m.pnl), "num strong " + tone(m.pnl), span);
        }
        out.appendChild(tr);
      });
    }
    $("positions").tBodies[0].replaceChildren(out);
    $("positions-empty").hidden = shown.length > 0;
  }

  function renderOrders(s) {
    const rows = [];
    for (const m of s.markets || []) {
      for (const t of m.tokens || []) {
        for (const q of t.quotes || []) rows.push({ m: m, t: t, q: q });
      }
    }
    setText("orders-count", rows.length);
    fillBody("orders", rows, [
      [(r) => r.m.label], [(r) => r.t.outcome], [(r) => r.q.side, (r) => "side-" + show(r.q.side)],
      [(r) => r.q.price, () => "num"], [(r) => r.q.size, () => "num"], [(r) => r.q.filled, () => "num"],
      [(r) => r.q.status], [(r) => r.q.strategy], [(r) => duration(1000 * r.q.age_s), () => "num"],
    ], "No open order.");
  }

  function renderFills(s) {
    const fills = (s.recent_fills || []).slice().reverse(); // newest first
    fillBody("fills", fills, [
      [(f) => clockTime(f.at_ms)], [(f) => f.label], [(f) => f.outcome], [(f) => f.side, (f) => "side-" + show(f.side)],
      [(f) => f.price, () => "num"], [(f) => f.size, () => "num"], [(f) => f.fee, () => "num"], [(f) => f.liquidity],
    ], "No fill yet.");
  }

  function renderFeeds(s) {
    fillBody("feeds", s.feeds || [], [
      [(f) => f.name], [(f) => f.kind], [(f) => (f.up ? "up" : "DOWN"), (f) => (f.up ? "pos" : "neg strong")],
      [(f) => clockTime(f.since_ms) + " (" + duration(s.now_ms - f.since_ms) + ")"],
      [(f) => f.sessions, () => "num"], [(f) => f.assets, () => "num"], [(f) => f.reason],
    ], "No feed connection yet.");
  }

  function renderRisk(s) {
    setText("gate", s.gate_open === false ? "closed" : "open", s.gate_open === false ? "neg" : "pos");
    const tripped = s.tripped || [];
    setText("breakers", tripped.length ? tripped.join(", ") : "none", tripped.length ? "neg" : "pos");
    const entries = (obj) => Object.keys(obj || {}).map((k) => ({ k: k, v: obj[k] }));
    fillBody("rejections", entries(s.rejections), [[(r) => r.k], [(r) => r.v, () => "num"]], "No rejection.");
    fillBody("intents", entries(s.intents_by_strategy), [[(r) => r.k], [(r) => r.v, () => "num"]], "No intent yet.");
  }

  function renderNotices(s) {
    const notices = (s.notices || []).slice().reverse();
    fillBody("notices", notices, [
      [(n) => clockTime(n.at_ms)], [(n) => n.level, (n) => "level-" + show(n.level)], [(n) => n.kind], [(n) => n.text],
    ], "Nothing to report.");
  }

  // ------------------------------------------------------------------ the PnL chart (inline SVG)

  const SVG = "http://www.w3.org/2000/svg";
  const H = 260, L = 64, R = 16, T = 12, B = 28; // the chart's height and margins, in CSS pixels

  function svg(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }

  function label(value, step) {
    const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
    return value.toFixed(digits);
  }

  function chartPoint(t, p) {
    return { t: t, total: Number(p.pnl), realised: Number(p.realised), marked: Number(p.unrealised) };
  }

  function finite(p) {
    return Number.isFinite(p.t) && Number.isFinite(p.total) && Number.isFinite(p.realised) && Number.isFinite(p.marked);
  }

  function renderChart(s) {
    const chart = $("pnl-chart");
    const W = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 800); // drawn at its real size
    chart.setAttribute("viewBox", "0 0 " + W + " " + H);
    const points = (s.pnl_history || []).slice(-CHART_POINTS).map((p) => chartPoint(p.at_ms, p)).filter(finite);
    chart.dataset.points = String(points.length); // the run's PnL rows drawn
    const live = chartPoint(s.now_ms, s); // and the figures of this instant, between two rows
    const withLive = points.length && finite(live) && live.t > points[points.length - 1].t;
    if (withLive) points.push(live);
    const out = document.createDocumentFragment();
    if (!points.length) {
      out.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis-label" },
        "waiting for the first PnL row"));
      chart.replaceChildren(out);
      setText("chart-note", "");
      return;
    }
    let t0 = points[0].t, t1 = points[points.length - 1].t;
    if (t1 - t0 < 10000) t1 = t0 + 10000; // at least 10 s wide, so early points do not stack on an edge
    let lo = Math.min(0, ...points.map((p) => Math.min(p.total, p.realised, p.marked)));
    let hi = Math.max(0, ...points.map((p) => Math.max(p.total, p.realised, p.marked)));
    if (hi - lo < 0.01) { hi += 0.005; lo -= 0.005; }
    const yStep = niceStep(hi - lo, 5);
    lo = Math.floor(lo / yStep) * yStep;
    hi = Math.ceil(hi / yStep) * yStep;
    const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
    const y = (v) => T + (H - T - B) * (hi - v) / (hi - lo);

    const rows = Math.round((hi - lo) / yStep);
    for (let i = 0; i <= rows; i++) { // horizontal grid and value labels
      const v = lo + i * yStep;
      const yy = y(v).toFixed(1);
      out.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: Math.abs(v) < yStep / 2 ? "zero" : "grid" }));
      out.appendChild(svg("text", { x: L - 6, y: yy, dy: "0.32em", "text-anchor": "end", class: "axis-label" },
        label(Math.abs(v) < yStep / 2 ? 0 : v, yStep)));
    }
    const timeSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]
      .map((s) => s * 1000);
    const tStep = timeSteps.find((s) => (t1 - t0) / s <= 6) || 86400000;
    for (let t = Math.ceil(t0 / tStep) * tStep; t <= t1; t += tStep) { // time labels
      const xx = x(t).toFixed(1);
      out.appendChild(svg("line", { x1: xx, x2: xx, y1: T, y2: H - B, class: "grid" }));
      out.appendChild(svg("text", { x: xx, y: H - B + 16, "text-anchor": "middle", class: "axis-label" }, clockTime(t)));
    }
    out.appendChild(svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    out.appendChild(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));

    for (const key of ["realised", "marked", "total"]) {
      const path = points.map((p) => x(p.t).toFixed(1) + "," + y(p[key]).toFixed(1)).join(" ");
      out.appendChild(svg("polyline", { points: path, class: "line line-" + key, "vector-effect": "non-scaling-stroke" }));
    }
    const every = Math.max(1, Math.ceil(points.length / 120));
    points.forEach((p, i) => {
      const now = withLive && i === points.length - 1;
      if (i % every && i !== points.length - 1 && !(withLive && i === points.length - 2)) return;
      const dot = svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.total).toFixed(1), r: now ? 3.5 : 2.5,
        class: now ? "point point-now" : "point" });
      dot.appendChild(svg("title", {}, (now ? "now " : "") + clockTime(p.t) + "  total " + p.total + "  realised "
        + p.realised + "  marked " + p.marked));
      out.appendChild(dot);
    });
    chart.replaceChildren(out);
    const drawn = points.length - (withLive ? 1 : 0);
    setText("chart-note", drawn + (drawn === 1 ? " PnL row" : " PnL rows") + " of the run" + (withLive ? ", and now (hollow)" : ""));
  }

  // ------------------------------------------------------------------ live updates

  function setConnection(text, cls) { setText("connection", text, cls); }

  function startPolling() {
    if (pollTimer !== null) return;
    setConnection("polling every 2 s", "warn");
    const tick = () => {
      fetch("api/state", { cache: "no-store" })
        .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then((state) => { render(state); setConnection("polling every 2 s", "warn"); })
        .catch(() => setConnection("run unreachable", "neg"));
    };
    tick();
    pollTimer = setInterval(tick, POLL_MS);
  }

  function startStream() {
    if (typeof EventSource === "undefined") { startPolling(); return; }
    if (source !== null) source.close();
    source = new EventSource("api/stream");
    source.addEventListener("state", (event) => {
      if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
      setConnection("live", "pos");
      try { render(JSON.parse(event.data)); } catch (err) { setConnection("bad data from the run", "neg"); }
    });
    source.onerror = () => { // the run went away or a proxy cut the stream: poll, and try the stream again later
      source.close();
      source = null;
      startPolling();
      setTimeout(startStream, STREAM_RETRY_MS);
    };
  }

  function refreshNow() {
    fetch("api/state", { cache: "no-store" }).then((r) => (r.ok ? r.json() : null)).then((s) => { if (s) render(s); })
      .catch(() => {});
  }

  setInterval(() => { // how old the figures on screen are
    if (!last) return;
    const age = Date.now() - receivedAt;
    if (age > 5000) setConnection("no update for " + duration(age), "neg");
  }, 1000);

  // ------------------------------------------------------------------ token and controls

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function showTokenState() {
    setText("token-state", token() ? "token set" : "no token: actions need one", token() ? "pos" : "muted");
  }

  function takeTokenFromFragment() {
    const match = /(?:^|[#&])token=([^&]*)/.exec(location.hash);
    if (!match) return;
    let value = match[1];
    try { value = decodeURIComponent(value); } catch (err) { /* keep it as written */ }
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    // Out of the address bar (and of bookmarks and screenshots); a fragment never reaches the server.
    history.replaceState(null, "", location.pathname + location.search);
  }

  function message(text, cls) { setText("action-message", text, cls); }

  const DONE = { pause: "Pause sent: the run stops quoting and cancels its orders.",
    resume: "Resume sent: the run quotes again.", "cancel-all": "Cancel all sent: every open order is being cancelled." };

  function act(action) {
    const secret = token();
    if (!secret) {
      message("No token: open the link the run printed (it ends in #token=...) or paste the token above.", "neg");
      return;
    }
    message("Sending " + action + "...", "muted");
    fetch("api/" + action, {
      method: "POST", cache: "no-store",
      headers: { Authorization: "Bearer " + secret, "Content-Type": "application/json" },
      body: JSON.stringify({ reason: action.replace("-", " ") + " from the dashboard" }),
    }).then((r) => {
      if (r.status === 401) {
        message("Not authorised (401): the token is wrong or missing. Use the link the run printed, or paste its"
          + " token above.", "neg");
      } else if (!r.ok) {
        message(action + " failed: HTTP " + r.status, "neg");
      } else {
        message(DONE[action] || action + " sent.", "pos");
        refreshNow();
      }
    }).catch(() => message(action + " failed: the run did not answer.", "neg"));
  }

  $("pause").addEventListener("click", () => act("pause"));
  $("resume").addEventListener("click", () => act("resume"));
  $("cancel-all").addEventListener("click", () => act("cancel-all"));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    $("token-input").value = "";
    showTokenState();
    message(value ? "Token set for this tab." : "Token cleared.", "muted");
  });
  window.addEventListener("resize", () => { if (last) renderChart(last); });
  $("show-quiet").addEventListener("change", () => { if (last) renderPositions(last); });
  window.addEventListener("hashchange", () => { takeTokenFromFragment(); showTokenState(); });

  // The state on screen, for a look from the browser's console (and the browser test).
  Object.defineProperty(window, "mmbotState", { get: () => last });

  takeTokenFromFragment();
  showTokenState();
  startStream();
})();
