// tradebook's web page: a live ladder, depth chart and trade tape from /api/v1/ws, and, with a token, an
// order form, the user's open orders and balances through the REST API. No build step, no libraries.
// Prices and quantities stay decimal strings; numbers are used only to draw (bar widths, the chart).
"use strict";

(() => {
  const API = new URL("api/v1/", document.baseURI);
  const WS_URL = (() => {
    const url = new URL("ws", API);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  })();
  const LEVELS = 15; // ladder rows per side
  const TAPE_ROWS = 50;
  const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
  const PING_MS = 15000;
  const SILENCE_MS = 45000; // pinged every 15 s: this long without a message (pong, heartbeat, data) is a dead link
  const OPEN_STATUSES = new Set(["OPEN", "PARTIALLY_FILLED", "UNTRIGGERED"]);

  const $ = (id) => document.getElementById(id);
  const el = {
    symbol: $("symbol"), status: $("status"), seq: $("seq"), token: $("token"), user: $("user"),
    message: $("message"), ladder: $("ladder"), asks: $("asks"), bids: $("bids"), spread: $("spread"),
    chart: $("depth-chart"), tape: $("tape"), account: $("account"), hint: $("account-hint"), form: $("order-form"),
    result: $("order-result"), orders: $("my-orders").tBodies[0], balances: $("balances").tBodies[0],
    type: $("order-type"), priceField: $("price-field"), price: $("order-price"),
  };

  // -- decimal strings -------------------------------------------------------------------------------------------
  /** "100.50" and "100.5" are one price: the key of a level is its canonical text. */
  function canon(text) {
    let s = String(text);
    if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s === "-0" ? "0" : s;
  }
  const isZero = (text) => /^-?0*\.?0*$/.test(String(text));
  /** Exact sum of decimal strings (BigInt), written with the most places any of them has. */
  function addDecimals(a, b) {
    const places = Math.max(frac(a), frac(b));
    const total = scaled(a, places) + scaled(b, places);
    return unscaled(total, places);
  }
  const frac = (s) => (String(s).split(".")[1] || "").length;
  function scaled(s, places) {
    const [int, f = ""] = String(s).split(".");
    return BigInt(int + f.padEnd(places, "0"));
  }
  function unscaled(n, places) {
    if (places === 0) return n.toString();
    const negative = n < 0n;
    const digits = (negative ? -n : n).toString().padStart(places + 1, "0");
    return (negative ? "-" : "") + digits.slice(0, -places) + "." + digits.slice(-places);
  }

  // -- state -----------------------------------------------------------------------------------------------------
  const state = {
    symbol: "",
    token: "",
    user: "",
    ws: null,
    attempt: 0,
    reconnectTimer: 0,
    silenceTimer: 0,
    pingTimer: 0,
    reconnected: false,
    book: { bids: new Map(), asks: new Map(), seq: null, time: null, ready: false },
    trades: [],
    orders: new Map(),
  };

  // -- status and messages ---------------------------------------------------------------------------------------
  function setStatus(text) {
    el.status.textContent = text;
    el.status.dataset.state = text;
  }
  let messageTimer = 0;
  function say(text, kind = "info") {
    el.message.textContent = text;
    el.message.dataset.kind = kind;
    el.message.hidden = !text;
    clearTimeout(messageTimer);
    if (text && kind !== "error") messageTimer = setTimeout(() => { el.message.hidden = true; }, 5000);
  }

  // -- the WebSocket ---------------------------------------------------------------------------------------------
  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = 0;
    let ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.onopen = () => {
      if (state.token) {
        send({ op: "auth", token: state.token });
        // What changed while the page was away reached no channel: read it again.
        if (state.reconnected) refreshAccount().catch(() => {});
      }
      state.reconnected = true;
      subscribeAll();
      armSilenceTimer();
      clearInterval(state.pingTimer);
      state.pingTimer = setInterval(() => send({ op: "ping" }), PING_MS);
    };
    ws.onmessage = (event) => {
      if (ws !== state.ws) return;
      armSilenceTimer();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message);
    };
    ws.onclose = (event) => {
      if (ws !== state.ws) return;
      state.ws = null;
      clearTimeout(state.silenceTimer);
      clearInterval(state.pingTimer);
      if (event.code === 4001) {
        say("The token was refused: the private channel is off until another is pasted.", "error");
        forgetToken();
      }
      scheduleReconnect();
    };
    ws.onerror = () => {}; // onclose follows and reconnects
  }

  function scheduleReconnect() {
    if (state.reconnectTimer) return;
    setStatus("reconnecting");
    state.book.ready = false;
    const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
    state.attempt += 1;
    const delay = base / 2 + Math.random() * base; // jitter: a restarted server is not hit by every page at once
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function armSilenceTimer() {
    clearTimeout(state.silenceTimer);
    state.silenceTimer = setTimeout(() => drop("silent"), SILENCE_MS);
  }

  /** Give up on the current connection now (a dead link's close handshake may never finish) and reconnect. */
  function drop(reason) {
    const ws = state.ws;
    if (!ws) return;
    state.ws = null;
    clearTimeout(state.silenceTimer);
    clearInterval(state.pingTimer);
    ws.close(4000, reason);
    scheduleReconnect();
  }

  function send(message) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
  }

  function subscribeAll() {
    if (state.symbol) {
      for (const channel of ["depth", "trades"]) send({ op: "subscribe", channel, symbol: state.symbol });
    }
    if (state.token) send({ op: "subscribe", channel: "private" });
  }

  function handle(message) {
    switch (message.type) {
      case "snapshot":
        if (message.channel === "depth" && message.symbol === state.symbol) applySnapshot(message);
        break;
      case "update":
        if (message.channel === "depth" && message.symbol === state.symbol) applyUpdate(message);
        break;
      case "trades":
        if (message.symbol === state.symbol) addTrades(message.trades, message.time);
        break;
      case "order":
        onPrivateOrder(message.order);
        break;
      case "trade":
        scheduleBalances();
        break;
      case "error":
        if (message.code === "unauthorized") {
          say("The token was refused: " + (message.message || "unauthorized"), "error");
        } else {
          say(message.message || message.code, "error");
        }
        break;
      default:
        break; // subscribed, unsubscribed, heartbeat, pong
    }
  }

  // -- the book --------------------------------------------------------------------------------------------------
  function applySnapshot(message) {
    const book = state.book;
    book.bids = new Map();
    book.asks = new Map();
    for (const [price, quantity] of message.bids) book.bids.set(canon(price), { price, quantity });
    for (const [price, quantity] of message.asks) book.asks.set(canon(price), { price, quantity });
    book.seq = message.seq;
    book.time = message.time;
    book.ready = true;
    state.attempt = 0;
    setStatus("live");
    renderBook();
  }

  function applyUpdate(message) {
    const book = state.book;
    if (!book.ready || message.seq <= book.seq) return; // stale: already in the snapshot
    if (message.seq !== book.seq + 1) {
      resync(); // a gap: start again from a fresh snapshot
      return;
    }
    for (const delta of message.deltas) {
      const side = delta.side === "BUY" ? book.bids : book.asks;
      const key = canon(delta.price);
      if (isZero(delta.quantity)) side.delete(key);
      else side.set(key, { price: delta.price, quantity: delta.quantity });
    }
    book.seq = message.seq;
    book.time = message.time;
    scheduleRender();
  }

  function resync() {
    state.book.ready = false;
    send({ op: "unsubscribe", channel: "depth", symbol: state.symbol });
    send({ op: "subscribe", channel: "depth", symbol: state.symbol });
  }

  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => {
      renderPending = false;
      renderBook();
    });
  }

  /** Levels best first with their running totals. */
  function sortedLevels(side, descending) {
    const levels = [...side.values()].sort((a, b) => {
      const d = Number(a.price) - Number(b.price);
      return descending ? -d : d;
    });
    let total = "0";
    return levels.map((level) => {
      total = addDecimals(total, level.quantity);
      return { ...level, total };
    });
  }

  function renderBook() {
    const bids = sortedLevels(state.book.bids, true);
    const asks = sortedLevels(state.book.asks, false);
    const shownBids = bids.slice(0, LEVELS);
    const shownAsks = asks.slice(0, LEVELS);
    const largest = Math.max(1e-18, ...shownBids.map((l) => Number(l.total)), ...shownAsks.map((l) => Number(l.total)));
    el.asks.replaceChildren(...shownAsks.slice().reverse().map((l) => ladderRow(l, "SELL", largest)));
    el.bids.replaceChildren(...shownBids.map((l) => ladderRow(l, "BUY", largest)));
    if (bids.length && asks.length) {
      const spread = Number(asks[0].price) - Number(bids[0].price);
      const places = Math.max(frac(asks[0].price), frac(bids[0].price));
      el.spread.textContent = "spread " + spread.toFixed(places);
    } else {
      el.spread.textContent = bids.length || asks.length ? "one-sided book" : "empty book";
    }
    el.ladder.dataset.seq = state.book.seq ?? "";
    el.seq.textContent = state.book.seq == null ? "" : "seq " + state.book.seq;
    drawChart(bids, asks);
  }

  function ladderRow(level, side, largest) {
    const row = document.createElement("div");
    row.className = "level " + (side === "BUY" ? "bid" : "ask");
    row.dataset.side = side;
    row.dataset.price = level.price;
    row.dataset.quantity = level.quantity;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.min(100, (100 * Number(level.total)) / largest).toFixed(2) + "%";
    row.append(bar, cell(level.price, "price"), cell(level.quantity, "quantity"), cell(level.total, "total"));
    row.title = "click to use this price";
    row.addEventListener("click", () => { el.price.value = level.price; });
    return row;
  }

  function cell(text, className, tag = "span") {
    const node = document.createElement(tag);
    node.className = className;
    node.textContent = text;
    return node;
  }

  // -- the depth chart -------------------------------------------------------------------------------------------
  function drawChart(bids, asks) {
    const canvas = el.chart;
    canvas.dataset.bidLevels = String(bids.length);
    canvas.dataset.askLevels = String(asks.length);
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 300;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    const pad = { left: 8, right: 8, top: 12, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = color("--muted", "#888");
    if (!bids.length && !asks.length) {
      ctx.textAlign = "center";
      ctx.fillText("no orders", width / 2, height / 2);
      return;
    }
    const prices = [...bids, ...asks].map((l) => Number(l.price));
    let low = Math.min(...prices);
    let high = Math.max(...prices);
    if (high === low) {
      low -= Math.abs(low) * 0.01 || 1;
      high += Math.abs(high) * 0.01 || 1;
    }
    const margin = (high - low) * 0.05;
    low -= margin;
    high += margin;
    const depth = Math.max(bids.length ? Number(bids[bids.length - 1].total) : 0, asks.length ? Number(asks[asks.length - 1].total) : 0);
    const x = (price) => pad.left + ((price - low) / (high - low)) * plotW;
    const y = (quantity) => pad.top + plotH - (quantity / depth) * plotH;

    const area = (levels, stroke, fill, towardLow) => {
      if (!levels.length) return;
      ctx.beginPath();
      let previous = 0;
      ctx.moveTo(x(Number(levels[0].price)), y(0));
      for (const level of levels) {
        const px = x(Number(level.price));
        ctx.lineTo(px, y(previous));
        ctx.lineTo(px, y(Number(level.total)));
        previous = Number(level.total);
      }
      const edge = towardLow ? x(low) : x(high);
      ctx.lineTo(edge, y(previous));
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.lineTo(edge, y(0));
      ctx.closePath();
      ctx.fillStyle = fill;
      ctx.fill();
    };
    area(bids, color("--bid", "#1a9e5a"), color("--bid-fill", "rgba(26,158,90,0.2)"), true);
    area(asks, color("--ask", "#d64545"), color("--ask-fill", "rgba(214,69,69,0.2)"), false);

    ctx.fillStyle = color("--muted", "#888");
    ctx.strokeStyle = color("--grid", "#ccc");
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(pad.left, pad.top + plotH + 0.5);
    ctx.lineTo(pad.left + plotW, pad.top + plotH + 0.5);
    ctx.stroke();
    const places = Math.max(0, ...[...bids, ...asks].map((l) => frac(l.price)));
    ctx.textBaseline = "top";
    for (let i = 0; i <= 4; i++) {
      const price = low + ((high - low) * i) / 4;
      ctx.textAlign = i === 0 ? "left" : i === 4 ? "right" : "center";
      ctx.fillText(price.toFixed(places), x(price), pad.top + plotH + 5);
    }
    ctx.textAlign = "left";
    ctx.fillText(String(depth), pad.left + 2, pad.top - 10);
  }

  // -- the trade tape --------------------------------------------------------------------------------------------
  /**
   * Live trades (execution order) go on top, newest first. A REST page (newest first) replaces the tape: it is
   * the stored history, and its ids need not be the feed's, so the two are never merged row by row.
   */
  function addTrades(trades, time, replace = false) {
    const rows = trades.map((trade) => ({ ...trade, time: trade.created_at ? Date.parse(trade.created_at) : time }));
    if (replace) state.trades = rows;
    else state.trades.unshift(...rows.reverse());
    state.trades.splice(TAPE_ROWS);
    renderTape();
  }

  function renderTape() {
    el.tape.replaceChildren(
      ...state.trades.map((trade) => {
        const row = document.createElement("li");
        row.className = trade.taker_side === "BUY" ? "buy" : "sell";
        row.dataset.tradeId = String(trade.id);
        row.dataset.price = trade.price;
        row.dataset.quantity = trade.quantity;
        const when = trade.time ? new Date(trade.time).toLocaleTimeString([], { hour12: false }) : "";
        row.append(cell(trade.price, "price"), cell(trade.quantity, "quantity"), cell(when, "time"));
        return row;
      }),
    );
  }

  // -- the REST API (with a token) -------------------------------------------------------------------------------
  async function api(method, path, body) {
    const response = await fetch(new URL(path, API), {
      method,
      headers: { Authorization: "Bearer " + state.token, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || response.statusText);
      error.status = response.status;
      error.code = data.error && data.error.code;
      throw error;
    }
    return data;
  }

  /** The user id a tradebook token names (its second field, base64url); display only. */
  function tokenUser(token) {
    const parts = token.split(".");
    if (parts.length !== 4) return "";
    try {
      const bytes = Uint8Array.from(atob(parts[1].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (error) {
      return "";
    }
  }

  async function useToken(token) {
    token = token.trim();
    if (token === state.token) return;
    state.token = token;
    state.orders.clear();
    renderOrders();
    el.balances.replaceChildren();
    if (!token) {
      forgetToken();
      return;
    }
    try {
      await refreshAccount();
    } catch (error) {
      say(error.status === 401 ? "The token was refused: " + error.message : error.message, "error");
      forgetToken();
      return;
    }
    sessionStorage.setItem("tradebook.token", token);
    state.user = tokenUser(token);
    el.user.textContent = state.user ? "signed in as " + state.user : "";
    el.account.hidden = false;
    el.hint.hidden = true;
    // A fresh connection authenticates first: the private channel then follows this token.
    if (state.ws) drop("new token");
    else if (!state.reconnectTimer) connect();
  }

  function forgetToken() {
    state.token = "";
    state.user = "";
    state.orders.clear();
    sessionStorage.removeItem("tradebook.token");
    el.user.textContent = "";
    el.account.hidden = true;
    el.hint.hidden = false;
  }

  async function refreshAccount() {
    await Promise.all([refreshOrders(), refreshBalances(), loadRecentTrades()]);
  }

  async function refreshOrders() {
    const query = new URLSearchParams({ symbol: state.symbol, limit: "200" });
    const page = await api("GET", "orders?" + query);
    state.orders.clear();
    for (const order of page.orders) if (OPEN_STATUSES.has(order.status)) state.orders.set(order.id, order);
    renderOrders();
  }

  async function refreshBalances() {
    const data = await api("GET", "balances");
    el.balances.replaceChildren(
      ...data.balances.map((b) => {
        const row = document.createElement("tr");
        row.dataset.asset = b.asset;
        row.append(cell(b.asset, "asset", "td"), cell(b.available, "available", "td"),
          cell(b.reserved, "reserved", "td"), cell(b.total, "total", "td"));
        return row;
      }),
    );
  }

  let balancesTimer = 0;
  function scheduleBalances() {
    clearTimeout(balancesTimer);
    balancesTimer = setTimeout(() => refreshBalances().catch(() => {}), 150);
  }

  async function loadRecentTrades() {
    if (!state.token || !state.symbol) return;
    const data = await api("GET", "trades?" + new URLSearchParams({ symbol: state.symbol, limit: String(TAPE_ROWS) }));
    addTrades(data.trades, null, true);
  }

  function onPrivateOrder(order) {
    if (order.symbol === state.symbol) {
      if (OPEN_STATUSES.has(order.status)) state.orders.set(order.id, order);
      else state.orders.delete(order.id);
      renderOrders();
    }
    scheduleBalances();
  }

  function renderOrders() {
    const orders = [...state.orders.values()].sort((a, b) => b.id - a.id);
    el.orders.replaceChildren(
      ...orders.map((order) => {
        const row = document.createElement("tr");
        row.dataset.orderId = String(order.id);
        row.dataset.side = order.side;
        row.dataset.price = order.price ?? "";
        row.dataset.status = order.status;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "cancel";
        button.dataset.orderId = String(order.id);
        button.textContent = "Cancel";
        button.addEventListener("click", () => cancel(order.id, button));
        const actions = document.createElement("td");
        actions.append(button);
        row.append(
          cell(String(order.id), "id", "td"), cell(order.side, "side " + order.side.toLowerCase(), "td"),
          cell(order.type, "type", "td"), cell(order.price ?? "market", "price", "td"),
          cell(order.quantity ?? "", "quantity", "td"), cell(order.filled_quantity, "filled", "td"),
          cell(order.status, "order-status", "td"), actions,
        );
        return row;
      }),
    );
    el.orders.parentElement.dataset.count = String(orders.length);
  }

  async function cancel(id, button) {
    button.disabled = true;
    try {
      const order = await api("DELETE", "orders/" + encodeURIComponent(id));
      onPrivateOrder(order);
      say("Order " + id + " cancelled.");
    } catch (error) {
      button.disabled = false;
      say("Cancel failed: " + error.message, "error");
      if (error.status === 409 || error.status === 404) refreshOrders().catch(() => {});
    }
  }

  async function placeOrder(event) {
    event.preventDefault();
    const form = new FormData(el.form);
    const body = {
      symbol: state.symbol,
      side: form.get("side"),
      type: form.get("type"),
      quantity: String(form.get("quantity")).trim(),
    };
    if (body.type === "LIMIT") body.price = String(form.get("price")).trim();
    const submit = $("order-submit");
    submit.disabled = true;
    try {
      const order = await api("POST", "orders", body);
      el.result.textContent = `Order ${order.id}: ${order.status}, filled ${order.filled_quantity}`;
      el.result.dataset.orderId = String(order.id);
      onPrivateOrder(order);
    } catch (error) {
      el.result.textContent = "Refused: " + error.message;
      delete el.result.dataset.orderId;
    } finally {
      submit.disabled = false;
    }
  }

  // -- the symbol ------------------------------------------------------------------------------------------------
  function chooseSymbol(symbol) {
    symbol = symbol.trim().toUpperCase();
    if (!symbol || symbol === state.symbol) return;
    if (state.symbol) {
      for (const channel of ["depth", "trades"]) send({ op: "unsubscribe", channel, symbol: state.symbol });
    }
    state.symbol = symbol;
    el.symbol.value = symbol;
    const url = new URL(location.href);
    url.searchParams.set("symbol", symbol);
    history.replaceState(null, "", url);
    document.title = symbol + " · tradebook";
    state.book = { bids: new Map(), asks: new Map(), seq: null, time: null, ready: false };
    state.trades = [];
    renderBook();
    renderTape();
    for (const channel of ["depth", "trades"]) send({ op: "subscribe", channel, symbol });
    if (state.token) refreshAccount().catch((error) => say(error.message, "error"));
  }

  // -- start -----------------------------------------------------------------------------------------------------
  el.symbol.addEventListener("change", () => chooseSymbol(el.symbol.value));
  el.token.addEventListener("change", () => useToken(el.token.value));
  el.form.addEventListener("submit", placeOrder);
  el.type.addEventListener("change", () => {
    const limit = el.type.value === "LIMIT";
    el.priceField.hidden = !limit;
    el.price.required = limit;
  });
  window.addEventListener("resize", () => scheduleRender());

  chooseSymbol(new URLSearchParams(location.search).get("symbol") || el.symbol.value);
  setStatus("connecting");
  connect();
  const saved = sessionStorage.getItem("tradebook.token");
  if (saved) {
    el.token.value = saved;
    useToken(saved);
  }
})();
