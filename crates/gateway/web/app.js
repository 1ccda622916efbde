// TradingSystem dashboard: plain JavaScript over the REST API and the /ws stream. No build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
const UNITS = 10000; // prices are fixed-point with 4 decimals on the server; validate on the same grid here

const S = {
  token: sessionStorage.getItem("ts.token"),
  user: sessionStorage.getItem("ts.user"),
  role: sessionStorage.getItem("ts.role"),
  expiresAt: sessionStorage.getItem("ts.expires"),
  instruments: new Map(),
  market: new Map(), // symbol -> {last, first, bid, ask}
  orders: new Map(),
  selected: null,
  ws: null,
  wsRetry: 1000,
  chart: null,
  series: null,
  refreshTimer: null,
};

// ---- formatting (pt-BR) ------------------------------------------------------------------------------------------

const BRL = new Intl.NumberFormat("pt-BR", { style: "currency", currency: "BRL" });
const INT = new Intl.NumberFormat("pt-BR", { maximumFractionDigits: 0 });
const PCT = new Intl.NumberFormat("pt-BR", { style: "percent", minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "always" });
const decimalsCache = new Map();

function decimalsOf(symbol) {
  const ins = S.instruments.get(symbol);
  if (!ins) return 2;
  if (!decimalsCache.has(symbol)) {
    const tick = toUnits(ins.tick_size) || 100;
    let zeros = 0;
    while (zeros < 4 && tick % 10 ** (zeros + 1) === 0) zeros++;
    decimalsCache.set(symbol, Math.max(4 - zeros, ins.kind === "FUTURE" ? 0 : 2));
  }
  return decimalsCache.get(symbol);
}

function fmtPrice(symbol, p) {
  if (p === null || p === undefined) return "—";
  const d = decimalsOf(symbol);
  const ins = S.instruments.get(symbol);
  const opts = { minimumFractionDigits: d, maximumFractionDigits: d };
  if (ins && ins.currency === "BRL" && ins.kind !== "FUTURE") {
    return new Intl.NumberFormat("pt-BR", { style: "currency", currency: "BRL", ...opts }).format(p);
  }
  return new Intl.NumberFormat("pt-BR", opts).format(p) + (ins && ins.kind === "FUTURE" ? " pts" : "");
}
const fmtMoney = (v) => (v === null || v === undefined ? "—" : BRL.format(v));
const fmtQty = (q) => INT.format(q);
// Every time on the screen is B3's (São Paulo), whatever zone the browser is in.
const B3_ZONE = "America/Sao_Paulo";
const fmtTime = (t) => new Date(t).toLocaleTimeString("pt-BR", { timeZone: B3_ZONE });
const SP_HM = new Intl.DateTimeFormat("pt-BR", { timeZone: B3_ZONE, hour: "2-digit", minute: "2-digit" });
const SP_DM = new Intl.DateTimeFormat("pt-BR", { timeZone: B3_ZONE, day: "2-digit", month: "2-digit" });
const SP_Y = new Intl.DateTimeFormat("pt-BR", { timeZone: B3_ZONE, year: "numeric" });
// The chart's axis labels (Lightweight Charts passes UTC seconds and the kind of tick: 0 year, 1 month, 2 day,
// 3 time, 4 time with seconds).
function chartTimeLabel(seconds, kind) {
  const d = new Date(seconds * 1000);
  if (kind === 0) return SP_Y.format(d);
  if (kind === 1 || kind === 2) return SP_DM.format(d);
  return SP_HM.format(d);
}
const signClass = (v) => (v > 0 ? "up" : v < 0 ? "down" : "");

/** Parses "38,50" or "38.50" into fixed-point units; null when it is not a number with at most 4 decimals. */
function toUnits(x) {
  if (typeof x === "number") return Math.round(x * UNITS);
  const s = String(x ?? "").trim().replace(/\s/g, "").replace(",", ".");
  const m = /^(\d+)(?:\.(\d{1,4}))?$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * UNITS + Number((m[2] || "").padEnd(4, "0"));
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

// ---- API ---------------------------------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (S.token) headers.Authorization = "Bearer " + S.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { status: 0, body: { error: { code: "NETWORK", message: "sem conexão com o servidor" } } };
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { raw: text }; }
  }
  if (resp.status === 401 && S.token && path !== "/api/v1/auth/login") logout("Sessão expirada: entre novamente.");
  return { status: resp.status, body: data };
}

const errText = (r) => (r.body && r.body.error ? `${r.body.error.code}: ${r.body.error.message}` : `HTTP ${r.status}`);

// ---- session -----------------------------------------------------------------------------------------------------

function saveSession(r, user) {
  S.token = r.token; S.role = r.role; S.user = user; S.expiresAt = r.expires_at;
  sessionStorage.setItem("ts.token", r.token);
  sessionStorage.setItem("ts.role", r.role);
  sessionStorage.setItem("ts.user", user);
  sessionStorage.setItem("ts.expires", r.expires_at);
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(S.refreshTimer);
  if (!S.expiresAt) return;
  const ms = new Date(S.expiresAt).getTime() - Date.now() - 60_000;
  S.refreshTimer = setTimeout(async () => {
    const r = await api("POST", "/api/v1/auth/refresh");
    if (r.status === 200) saveSession(r.body, S.user);
  }, Math.max(ms, 5_000));
}

function logout(message) {
  S.token = null;
  sessionStorage.clear();
  clearTimeout(S.refreshTimer);
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  const username = $("login-user").value.trim();
  const r = await api("POST", "/api/v1/auth/login", { username, password: $("login-pass").value });
  if (r.status !== 200) {
    $("login-error").textContent = r.status === 401 ? "Usuário ou senha inválidos." : errText(r);
    return;
  }
  $("login-pass").value = "";
  saveSession(r.body, username);
  start();
}

// ---- market watch and chart --------------------------------------------------------------------------------------

function watchRow(symbol) {
  let row = document.querySelector(`#watch tr[data-symbol="${symbol}"]`);
  if (!row) {
    row = el("tr", { "data-symbol": symbol, onclick: () => select(symbol) },
      el("td", {}, symbol), el("td", { class: "num last" }), el("td", { class: "num bid" }), el("td", { class: "num ask" }), el("td", { class: "num chg" }));
    $("watch").tBodies[0].append(row);
  }
  return row;
}

function renderWatch(symbol) {
  const m = S.market.get(symbol) || {};
  const row = watchRow(symbol);
  const last = row.querySelector(".last");
  const prev = last.dataset.value ? Number(last.dataset.value) : null;
  last.textContent = fmtPrice(symbol, m.last);
  last.className = "num last " + (prev !== null && m.last !== undefined ? signClass(m.last - prev) : "");
  if (m.last !== undefined) last.dataset.value = m.last;
  row.querySelector(".bid").textContent = fmtPrice(symbol, m.bid);
  row.querySelector(".ask").textContent = fmtPrice(symbol, m.ask);
  const chg = row.querySelector(".chg");
  if (m.first && m.last !== undefined) {
    const v = (m.last - m.first) / m.first;
    chg.textContent = PCT.format(v);
    chg.className = "num chg " + signClass(v);
  }
}

function select(symbol) {
  S.selected = symbol;
  document.querySelectorAll("#watch tbody tr").forEach((r) => r.classList.toggle("selected", r.dataset.symbol === symbol));
  $("t-symbol").value = symbol;
  $("chart-symbol").textContent = symbol;
  updateTicketHint();
  loadCandles();
}

function makeChart() {
  if (!window.LightweightCharts) {
    $("chart").textContent = "Biblioteca de gráficos não carregou.";
    return;
  }
  S.chart = LightweightCharts.createChart($("chart"), {
    autoSize: true,
    layout: { background: { color: "#171e26" }, textColor: "#dce3ea" },
    grid: { vertLines: { color: "#26313d" }, horzLines: { color: "#26313d" } },
    timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: chartTimeLabel },
    localization: {
      locale: "pt-BR",
      priceFormatter: (p) => (S.selected ? fmtPrice(S.selected, p) : String(p)),
      timeFormatter: (t) => `${chartTimeLabel(t, 2)} ${chartTimeLabel(t, 3)}`,
    },
  });
  S.series = S.chart.addCandlestickSeries({ upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
}

const candlePoint = (c) => ({ time: Math.floor(new Date(c.open_time).getTime() / 1000), open: c.open, high: c.high, low: c.low, close: c.close });

async function loadCandles() {
  if (!S.series || !S.selected) return;
  const symbol = S.selected;
  const interval = $("chart-interval").value;
  const r = await api("GET", `/api/v1/market/candles?symbol=${encodeURIComponent(symbol)}&interval=${interval}&limit=500`);
  if (r.status !== 200 || symbol !== S.selected) return;
  S.series.setData(r.body.data.map(candlePoint));
  S.series.applyOptions({ priceFormat: { type: "price", precision: decimalsOf(symbol), minMove: S.instruments.get(symbol)?.tick_size || 0.01 } });
  frameCandles(r.body.data.length);
}

// A session's first bars start at the left with room to grow, at a readable width, not a sliver at the right edge;
// a long history shows its last 120 bars.
const MIN_BARS_SHOWN = 60;
function frameCandles(n) {
  if (!S.chart) return;
  const ts = S.chart.timeScale();
  // Three empty slots on the left keep the first bar's time label whole.
  if (n <= MIN_BARS_SHOWN) ts.setVisibleLogicalRange({ from: -3, to: MIN_BARS_SHOWN });
  else ts.setVisibleLogicalRange({ from: n - 120, to: n + 2 });
}

function onCandle(c) {
  if (!S.series || c.symbol !== S.selected || $("chart-interval").value !== "1m") return;
  try { S.series.update(candlePoint(c)); } catch { /* an older bar than the last shown: the next reload has it */ }
}

function onTrade(symbol, t) {
  const m = S.market.get(symbol) || {};
  m.last = t.price;
  if (m.first === undefined) m.first = t.price;
  S.market.set(symbol, m);
  renderWatch(symbol);
}

// ---- order ticket ------------------------------------------------------------------------------------------------

function updateTicketHint() {
  const ins = S.instruments.get($("t-symbol").value);
  const type = $("t-type").value;
  $("t-price-label").hidden = type === "MARKET" || type === "STOP";
  $("t-stop-label").hidden = !(type === "STOP" || type === "STOP_LIMIT");
  if (ins) {
    $("t-hint").textContent = `Lote ${fmtQty(ins.lot)} · tick ${fmtPrice(ins.symbol, ins.tick_size)}`;
    const m = S.market.get(ins.symbol);
    if (m && m.last !== undefined && !$("t-price").value) $("t-price").value = String(m.last).replace(".", ",");
  }
}

/** Client-side checks of what the server will check anyway, so a typo is caught before it becomes a rejection. */
function validateTicket() {
  const symbol = $("t-symbol").value;
  const ins = S.instruments.get(symbol);
  if (!ins) return { error: "Escolha um ativo." };
  const type = $("t-type").value;
  const qty = Number($("t-qty").value.trim().replace(/\./g, ""));
  if (!Number.isInteger(qty) || qty <= 0) return { error: "Quantidade deve ser um inteiro positivo." };
  if (qty % ins.lot !== 0) return { error: `Quantidade deve ser múltipla do lote (${fmtQty(ins.lot)}).` };
  const tick = toUnits(ins.tick_size);
  const order = { symbol, side: $("t-side").value, type, quantity: qty, time_in_force: $("t-tif").value };
  const priced = (id, name, field) => {
    const u = toUnits($(id).value);
    if (u === null || u <= 0) return `${name} inválido: use um número positivo com até 4 casas.`;
    if (u % tick !== 0) return `${name} fora do tick de ${fmtPrice(symbol, ins.tick_size)}.`;
    order[field] = u / UNITS;
    return null;
  };
  if (type === "LIMIT" || type === "STOP_LIMIT") {
    const e = priced("t-price", "Preço", "price");
    if (e) return { error: e };
  }
  if (type === "STOP" || type === "STOP_LIMIT") {
    const e = priced("t-stop", "Stop", "stop_price");
    if (e) return { error: e };
  }
  return { order };
}

async function sendOrder(ev) {
  ev.preventDefault();
  $("t-error").textContent = "";
  $("t-result").textContent = "";
  const v = validateTicket();
  if (v.error) { $("t-error").textContent = v.error; return; }
  $("t-send").disabled = true;
  const r = await api("POST", "/api/v1/orders", v.order);
  $("t-send").disabled = false;
  if (r.status === 201 || r.status === 200) {
    upsertOrder(r.body);
    $("t-result").textContent = `Ordem #${r.body.id} ${r.body.status}`;
  } else {
    $("t-error").textContent = "Rejeitada — " + errText(r);
    if (r.body && r.body.error && r.body.error.details && r.body.error.details.order) upsertOrder(r.body.error.details.order);
  }
  refreshPositions();
}

// ---- blotter -----------------------------------------------------------------------------------------------------

const OPEN = new Set(["NEW", "PARTIALLY_FILLED"]);
const FINAL = new Set(["FILLED", "CANCELED", "REJECTED", "EXPIRED"]);

/** [ms, ns of the second]: JavaScript dates stop at milliseconds, and two states of an order often share one. */
function stamp(t) {
  const m = /\.(\d+)/.exec(t);
  return [Date.parse(t), Number(((m && m[1]) || "").padEnd(9, "0").slice(0, 9))];
}

/** Whether `o` is older news than `prev` (the REST answer and the stream race each other). */
function stale(prev, o) {
  if (FINAL.has(prev.status) && !FINAL.has(o.status)) return true;
  const [a, b] = [stamp(prev.updated_at), stamp(o.updated_at)];
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1];
}

const TYPE_PT = { MARKET: "Mercado", LIMIT: "Limitada", STOP: "Stop", STOP_LIMIT: "Stop limitada" };
const STATUS_PT = {
  PENDING_NEW: "Enviada", NEW: "Aberta", PARTIALLY_FILLED: "Parcial", FILLED: "Executada", PENDING_CANCEL: "Cancelando",
  CANCELED: "Cancelada", REJECTED: "Rejeitada", EXPIRED: "Expirada",
};

function upsertOrder(o) {
  const prev = S.orders.get(o.id);
  if (prev && stale(prev, o)) return;
  S.orders.set(o.id, o);
  const tbody = $("orders").tBodies[0];
  let row = tbody.querySelector(`tr[data-id="${o.id}"]`);
  const cells = [
    String(o.id), fmtTime(o.created_at), o.symbol, o.side === "BUY" ? "C" : "V", TYPE_PT[o.type] || o.type, fmtQty(o.quantity),
    o.price !== null ? fmtPrice(o.symbol, o.price) : o.stop_price !== null ? "stop " + fmtPrice(o.symbol, o.stop_price) : "mercado",
    o.filled_quantity ? `${fmtQty(o.filled_quantity)} @ ${fmtPrice(o.symbol, o.avg_fill_price)}` : "",
    (STATUS_PT[o.status] || o.status) + (o.reject_code ? ` (${o.reject_code})` : "") + (o.pending_replace ? " (alterando)" : ""),
  ];
  const fresh = el("tr", {
    "data-id": String(o.id), "data-status": o.status, "data-qty": String(o.quantity),
    "data-price": o.price !== null ? String(o.price) : "", title: o.reject_reason || "",
  }, ...cells.map((c, i) => el("td", { class: [5, 6, 7].includes(i) ? "num" : "" }, c)));
  const action = el("td");
  if (OPEN.has(o.status)) {
    if (!o.pending_replace && o.type !== "MARKET") {
      action.append(el("button", { class: "small ghost edit", onclick: () => editOrder(o, action) }, "Alterar"));
    }
    action.append(el("button", { class: "small ghost cancel", onclick: () => cancelOrder(o.id) }, "Cancelar"));
  }
  fresh.append(action);
  if (row) row.replaceWith(fresh);
  else {
    // Newest first.
    const after = [...tbody.rows].find((r) => Number(r.dataset.id) < o.id);
    tbody.insertBefore(fresh, after || null);
    while (tbody.rows.length > 200) tbody.deleteRow(-1);
  }
}

/** An inline editor in the order's row: new quantity and price (or stop), sent as a modify. */
function editOrder(o, cell) {
  const priceField = o.price !== null ? "price" : "stop_price";
  const current = o[priceField];
  const qty = el("input", { class: "edit-qty", inputmode: "numeric", size: "7", value: String(o.quantity), "aria-label": "Nova quantidade" });
  const px = el("input", { class: "edit-price", inputmode: "decimal", size: "8", value: String(current).replace(".", ","),
    "aria-label": priceField === "price" ? "Novo preço" : "Novo stop" });
  const send = async () => {
    $("t-error").textContent = "";
    const ins = S.instruments.get(o.symbol);
    const q = Number(qty.value.trim().replace(/\./g, ""));
    const u = toUnits(px.value);
    if (!Number.isInteger(q) || q <= 0 || (ins && q % ins.lot !== 0)) {
      $("t-error").textContent = `Alteração de #${o.id}: quantidade inválida.`;
      return;
    }
    if (u === null || u <= 0 || (ins && u % toUnits(ins.tick_size) !== 0)) {
      $("t-error").textContent = `Alteração de #${o.id}: preço inválido ou fora do tick.`;
      return;
    }
    const body = {};
    if (q !== o.quantity) body.quantity = q;
    if (u / UNITS !== current) body[priceField] = u / UNITS;
    if (!Object.keys(body).length) { S.orders.delete(o.id); upsertOrder(o); return; }
    const r = await api("PATCH", `/api/v1/orders/${o.id}`, body);
    if (r.status === 200) upsertOrder(r.body);
    else $("t-error").textContent = `Alteração de #${o.id}: ` + errText(r);
  };
  const undo = () => { const cur = S.orders.get(o.id) || o; S.orders.delete(o.id); upsertOrder(cur); };
  cell.replaceChildren(qty, px,
    el("button", { class: "small edit-send", onclick: send }, "OK"),
    el("button", { class: "small ghost", onclick: undo, "aria-label": "Desistir" }, "×"));
  qty.focus();
}

async function cancelOrder(id) {
  const r = await api("DELETE", `/api/v1/orders/${id}`);
  if (r.status === 200) upsertOrder(r.body);
  else $("t-error").textContent = `Cancelamento de #${id}: ` + errText(r);
}

async function loadOrders() {
  const r = await api("GET", "/api/v1/orders?limit=100");
  if (r.status === 200) r.body.data.slice().reverse().forEach(upsertOrder);
}

// ---- positions and risk ------------------------------------------------------------------------------------------

let positionsPending = null;
function refreshPositions() {
  if (positionsPending) return;
  positionsPending = setTimeout(async () => {
    positionsPending = null;
    const r = await api("GET", "/api/v1/positions");
    if (r.status !== 200) return;
    const tbody = $("positions").tBodies[0];
    tbody.replaceChildren(...r.body.data.map((p) => el("tr", { "data-symbol": p.symbol },
      el("td", {}, p.symbol),
      el("td", { class: "num qty " + signClass(p.quantity) }, fmtQty(p.quantity)),
      el("td", { class: "num" }, p.avg_price === null ? "—" : fmtPrice(p.symbol, p.avg_price)),
      el("td", { class: "num" }, fmtPrice(p.symbol, p.last_price)),
      el("td", { class: "num " + signClass(p.unrealized) }, fmtMoney(p.unrealized)),
      el("td", { class: "num " + signClass(p.realized_today) }, fmtMoney(p.realized_today)),
      el("td", { class: "num " + signClass(p.daily_pnl) }, fmtMoney(p.daily_pnl)))));
    $("pos-accounts").tBodies[0].replaceChildren(...(r.body.accounts || []).map((a) => el("tr", { "data-account": a.account },
      el("td", {}, a.account),
      el("td", {}, a.positions.filter((p) => p.quantity !== 0).map((p) => `${p.symbol} ${fmtQty(p.quantity)}`).join(", ") || "—"),
      el("td", { class: "num " + signClass(a.totals.daily_pnl) }, fmtMoney(a.totals.daily_pnl)),
      el("td", { class: a.kill_switch_active ? "down" : "" }, a.kill_switch_active ? "bloqueada" : ""))));
    const t = r.body.totals;
    $("pos-unrealized").textContent = fmtMoney(t.unrealized);
    $("pos-realized").textContent = fmtMoney(t.realized_today);
    $("pos-daily").textContent = fmtMoney(t.daily_pnl);
    $("pos-daily").dataset.refreshes = String(Number($("pos-daily").dataset.refreshes || 0) + 1);
    // The risk panel moves with the positions, from the same snapshot of the day's P&L: one number on one screen.
    S.dailyPnl = t.daily_pnl;
    if (S.riskStatus) renderRiskStatus(S.riskStatus);
    refreshRisk();
  }, 250);
}

function kv(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([k, v, cls]) => [el("dt", {}, k), el("dd", { class: cls || "" }, v)]));
}

function renderRiskStatus(s) {
  const ks = s.kill_switch;
  const daily = S.dailyPnl ?? s.daily_pnl;
  kv($("risk-status"), [
    ["Kill switch", ks.active ? `ATIVO — ${ks.reason || ""}` : "inativo", ks.active ? "down" : "up"],
    ["Estado", s.trading_state],
    ["P&L do dia", fmtMoney(daily), signClass(daily)],
    ["Limite de perda diária", fmtMoney(s.daily_loss_limit)],
    ["Nível de perda", s.loss_level],
    ["Exposição", fmtMoney(s.exposure)],
    ["Ordens abertas", String(s.open_orders)],
    ...(s.account_kill_switches || []).map((k) => [`Kill switch da conta ${k.account}`, `ATIVO — ${k.reason || ""}`, "down"]),
  ]);
}

const SESSION_PT = {
  LOGGED_ON: "conectada", CONNECTING: "conectando", LOGGING_ON: "em logon", LOGGING_OUT: "saindo",
  DISCONNECTED: "desconectada", OUT_OF_SCHEDULE: "fora do horário", STOPPED: "parada",
};

let brokersAt = 0;
/** The broker connections (at most every 2 s: the risk panel refreshes with every fill). */
async function refreshBrokers() {
  if (Date.now() - brokersAt < 2000) return;
  brokersAt = Date.now();
  const r = await api("GET", "/api/v1/brokers");
  if (r.status !== 200) return;
  $("brokers").tBodies[0].replaceChildren(...r.body.data.map((b) => {
    const state = b.session ? (SESSION_PT[b.session.status] || b.session.status) + ` (seq ${b.session.next_sender_seq}/${b.session.next_target_seq})`
      : b.can_route ? "conectada" : "desconectada";
    return el("tr", { "data-broker": b.name, "data-up": String(b.can_route), title: b.session ? b.session.detail : "" },
      el("td", {}, b.name), el("td", {}, b.kind), el("td", {}, b.accounts.join(", ")),
      el("td", { class: b.can_route ? "up" : "down" }, state));
  }));
}

let riskPending = false;
async function refreshRisk() {
  if (riskPending) return;
  riskPending = true;
  const [st, lim] = await Promise.all([api("GET", "/api/v1/risk/status"), api("GET", "/api/v1/risk/limits")]).finally(() => { riskPending = false; });
  if (st.status === 200) {
    const s = st.body;
    const ks = s.kill_switch;
    S.riskStatus = s;
    renderRiskStatus(s);
    $("kill-banner").hidden = !ks.active;
    $("kill-activate").hidden = ks.active;
    $("kill-release").hidden = !(ks.active && S.role === "admin");
    $("kill-activate").disabled = S.role === "viewer";
  }
  refreshBrokers();
  if (lim.status === 200) {
    const l = lim.body;
    kv($("risk-limits"), [
      ["Ordens por segundo", String(l.max_orders_per_second)],
      ["Qtd máx. ações", fmtQty(l.max_order_qty_stock)],
      ["Qtd máx. futuros", fmtQty(l.max_order_qty_future)],
      ["Notional máx.", fmtMoney(l.max_notional)],
      ["Banda de preço", `${(l.price_band_bps / 100).toLocaleString("pt-BR")} %`],
      ["Posição máx. ações", fmtQty(l.position_limit_stock)],
      ["Posição máx. futuros", fmtQty(l.position_limit_future)],
      ["Perda diária máx.", fmtMoney(l.daily_loss_limit)],
    ]);
  }
}

function openKillDialog(activate) {
  $("kill-title").textContent = activate ? "Ativar kill switch?" : "Liberar kill switch?";
  $("kill-text").textContent = activate
    ? "Bloqueia novas ordens e cancela as ordens abertas."
    : "Volta a aceitar ordens. Só administradores podem liberar.";
  $("kill-flatten-label").hidden = !activate;
  $("kill-reason").value = "";
  $("kill-error").textContent = "";
  $("kill-dialog").dataset.mode = activate ? "activate" : "release";
  $("kill-dialog").showModal();
}

async function confirmKill(ev) {
  ev.preventDefault();
  const reason = $("kill-reason").value.trim();
  if (!reason) { $("kill-error").textContent = "Informe o motivo."; return; }
  const activate = $("kill-dialog").dataset.mode === "activate";
  const r = activate
    ? await api("POST", "/api/v1/risk/kill-switch", { reason, cancel_open_orders: true, flatten: $("kill-flatten").checked })
    : await api("DELETE", "/api/v1/risk/kill-switch", { reason });
  if (r.status !== 200) { $("kill-error").textContent = errText(r); return; }
  $("kill-dialog").close();
  refreshRisk();
  loadOrders();
}

// ---- panels of services that may not be built ----------------------------------------------------------------------

/** A panel's service is built when the server's own OpenAPI document has its route; otherwise the panel says so. */
async function probeServices() {
  let paths = {};
  try {
    const doc = await (await fetch("/openapi.json")).json();
    paths = doc.paths || {};
  } catch { /* treated as nothing built */ }
  for (const body of document.querySelectorAll(".service-body")) {
    const route = body.dataset.probe.split("?")[0];
    if (!paths[route]) {
      body.replaceChildren(el("p", {}, `${body.dataset.name}: serviço ainda não disponível nesta versão do servidor.`));
      continue;
    }
    const r = await api("GET", body.dataset.probe);
    if (r.status !== 200 || !r.body || !Array.isArray(r.body.data)) {
      body.replaceChildren(el("p", { class: "error" }, `${body.dataset.name}: ${errText(r)}`));
    } else if (body.parentElement.id === "panel-signals") {
      renderSignals(body, r.body.data);
    } else if (body.parentElement.id === "panel-ideas") {
      renderKanban(body, r.body.data);
    } else if (body.parentElement.id === "panel-docs") {
      renderDocsSearch(body, r.body.data);
    } else {
      body.replaceChildren(r.body.data.length
        ? el("ul", {}, ...r.body.data.slice(0, 20).map((x) => el("li", {}, x.title || JSON.stringify(x))))
        : el("p", {}, "Nada por aqui ainda."));
    }
  }
}

const signalRange = (s) => (s.buy_min === null ? "—" : s.buy_min === s.buy_max ? fmtPlain(s.buy_min) : `${fmtPlain(s.buy_min)} a ${fmtPlain(s.buy_max)}`);
const fmtPlain = (v) => (v === null || v === undefined ? "—" : new Intl.NumberFormat("pt-BR", { minimumFractionDigits: 2, maximumFractionDigits: 4 }).format(v));

function signalRow(s) {
  return el("tr", { "data-id": String(s.id) },
    el("td", {}, fmtTime(s.ts)), el("td", {}, s.asset), el("td", {}, s.signal_type),
    el("td", { class: s.side === "BUY" ? "up" : "down" }, s.side === "BUY" ? "Compra" : "Venda"),
    el("td", { class: "num" }, signalRange(s)), el("td", { class: "num" }, fmtPlain(s.target_final)), el("td", { class: "num" }, fmtPlain(s.stop)));
}

function renderSignals(body, list) {
  if (!list.length) {
    body.replaceChildren(el("p", { class: "empty" }, "Nenhum sinal recebido ainda."));
    return;
  }
  body.replaceChildren(el("table", { id: "signals" },
    el("thead", {}, el("tr", {}, ...["Hora", "Ativo", "Tipo", "Lado", "Entrada", "Alvo final", "Stop"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...list.map(signalRow))));
}

/** Builds `<mark>` elements from the server's snippet (escaped text with <mark> around matches) without innerHTML. */
function snippetNodes(html) {
  const decode = (t) => t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  return html.split(/(<mark>.*?<\/mark>)/).filter(Boolean).map((part) => {
    const m = /^<mark>(.*)<\/mark>$/.exec(part);
    return m ? el("mark", {}, decode(m[1])) : document.createTextNode(decode(part));
  });
}

function docHits(list, hits) {
  list.replaceChildren(...(hits.length
    ? hits.map((h) => el("li", { "data-path": h.path }, el("strong", {}, h.title), " ", el("span", { class: "muted" }, h.path), el("br"), ...snippetNodes(h.snippet || "")))
    : [el("li", { class: "muted" }, "Nenhum documento encontrado.")]));
}

function renderDocsSearch(body, first) {
  const input = el("input", { id: "docs-q", placeholder: "Buscar na documentação (ex.: gestao de risco)", "aria-label": "Buscar documentação" });
  const list = el("ul", { id: "docs-hits" });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const r = await api("GET", `/api/v1/docs/search?limit=8&q=${encodeURIComponent(input.value)}`);
      if (r.status === 200) docHits(list, r.body.data);
    }, 200);
  });
  body.replaceChildren(input, list);
  docHits(list, first.slice(0, 8));
}

const KANBAN = [["new", "Nova"], ["review", "Revisão"], ["in-progress", "Em andamento"], ["completed", "Concluída"], ["rejected", "Rejeitada"]];

function renderKanban(body, ideas) {
  body.replaceChildren(el("div", { class: "kanban" }, ...KANBAN.map(([status, label]) => {
    const items = ideas.filter((i) => i.status === status);
    return el("div", { class: "col", "data-status": status },
      el("strong", {}, `${label} (${items.length})`),
      ...items.slice(0, 8).map((i) => el("div", { class: "item", title: i.description }, `${i.title} · ${i.priority}`)));
  })));
}

function onSignal(s) {
  const body = document.querySelector("#panel-signals .service-body");
  if (!body) return;
  const tbody = body.querySelector("#signals tbody");
  if (!tbody) { renderSignals(body, [s]); return; }
  const old = tbody.querySelector(`tr[data-id="${s.id}"]`);
  if (old) old.replaceWith(signalRow(s));
  else tbody.prepend(signalRow(s));
  while (tbody.rows.length > 20) tbody.deleteRow(-1);
}

// ---- the stream --------------------------------------------------------------------------------------------------

function connect() {
  if (!S.token) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(S.token)}`);
  S.ws = ws;
  ws.onopen = () => {
    S.wsRetry = 1000;
    $("ws-state").textContent = "Tempo real: conectado";
    $("ws-state").className = "pill good";
    ws.send(JSON.stringify({ action: "subscribe", channels: ["trades", "quotes", "candles", "orders", "fills", "positions", "risk", "signals"], symbols: [...S.instruments.keys()] }));
  };
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    switch (m.type) {
      case "trade": onTrade(m.symbol, m.data); break;
      case "quote": {
        const q = S.market.get(m.symbol) || {};
        q.bid = m.data.bid ? m.data.bid.price : undefined;
        q.ask = m.data.ask ? m.data.ask.price : undefined;
        S.market.set(m.symbol, q);
        renderWatch(m.symbol);
        break;
      }
      case "candle": onCandle(m.data); break;
      case "order": upsertOrder(m.data); break;
      case "fill": case "position": refreshPositions(); break;
      case "risk": refreshRisk(); break;
      case "signal": onSignal(m.data); break;
      case "error": console.warn("stream error", m.code, m.message); break;
      default: break;
    }
  };
  ws.onclose = () => {
    $("ws-state").textContent = "Tempo real: reconectando";
    $("ws-state").className = "pill bad";
    S.ws = null;
    setTimeout(connect, S.wsRetry);
    S.wsRetry = Math.min(S.wsRetry * 2, 30000);
  };
}

async function feedState() {
  const r = await api("GET", "/api/v1/market/status");
  if (r.status !== 200) return;
  const c = r.body.connection;
  const up = c && c.market_data === "CONNECTED";
  const LINK = { CONNECTED: "conectado", CONNECTING: "conectando", DISCONNECTED: "desconectado" };
  const SOURCE = { sim: "simulado", replay: "reprodução" };
  const state = c ? LINK[c.market_data] || c.market_data.toLowerCase() : "—";
  $("feed-state").textContent = `Mercado (${SOURCE[r.body.source] || r.body.source}): ${state}`;
  $("feed-state").className = "pill " + (up ? "good" : "bad");
}

// ---- live strategies ---------------------------------------------------------------------------------------------

const LIVE_STATE = { running: "rodando", stopped: "parada", failed: "falhou" };

async function toggleStrategy(name, action) {
  const r = await api("POST", `/api/v1/strategies/${encodeURIComponent(name)}/${action}`, {});
  $("strategies-error").textContent = r.status === 200 ? "" : errText(r);
  refreshStrategies();
}

async function refreshStrategies() {
  const r = await api("GET", "/api/v1/strategies");
  if (r.status !== 200) return;
  const canTrade = S.role === "trader" || S.role === "admin";
  $("strategies").tBodies[0].replaceChildren(...r.body.data.map((x) => {
    const running = x.state === "running";
    const action = running ? "stop" : "start";
    return el("tr", { "data-name": x.name, "data-state": x.state, title: x.last_error || "" },
      el("td", {}, x.name),
      el("td", {}, x.kind),
      el("td", {}, x.symbols.join(", ")),
      el("td", { class: x.state === "failed" ? "down" : "" }, (LIVE_STATE[x.state] || x.state) + (x.last_error ? ` — ${x.last_error}` : "")),
      el("td", { class: "num" }, `${x.orders} / ${x.fills}`),
      el("td", { class: "num " + signClass(x.pnl) }, fmtMoney(x.pnl)),
      el("td", {}, canTrade ? el("button", { class: "ghost", onclick: () => toggleStrategy(x.name, action) }, running ? "Parar" : "Iniciar") : ""));
  }));
}

// ---- backtests ---------------------------------------------------------------------------------------------------

const BT_STATUS = { queued: "na fila", running: "rodando", done: "concluído", failed: "falhou", canceled: "cancelado" };

// "fast=10 slow=30" (or comma-separated) → {fast: 10, slow: 30}; numbers and booleans as such, the rest as text.
function parseParams(text) {
  const out = {};
  for (const part of text.split(/[\s,;]+/).filter(Boolean)) {
    const i = part.indexOf("=");
    if (i <= 0) throw new Error(`parâmetro "${part}": use nome=valor`);
    const [k, v] = [part.slice(0, i), part.slice(i + 1)];
    out[k] = v === "true" ? true : v === "false" ? false : v !== "" && !isNaN(Number(v)) ? Number(v) : v;
  }
  return out;
}

function drawEquity(points) {
  const svg = $("bt-equity");
  svg.replaceChildren();
  if (!points || points.length < 2) return;
  const ys = points.map((p) => p[1]);
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const coords = points.map((p, i) => `${((i / (points.length - 1)) * 600).toFixed(1)},${(152 - ((p[1] - lo) / span) * 144).toFixed(1)}`);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(line);
}

function showBacktest(job) {
  S.btShown = job.id;
  const pct = Math.round((job.progress || 0) * 100);
  $("bt-status").textContent = `#${job.id}: ${BT_STATUS[job.status] || job.status}` +
    (job.status === "running" || job.status === "queued" ? ` (${pct}%)` : "") + (job.error ? ` — ${job.error}` : "");
  const done = job.status === "done" && job.summary;
  $("bt-result").hidden = !done;
  if (!done) return;
  const s = job.summary, r = s.returns, t = s.trades;
  const pctFmt = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(2).replace(".", ",")} %`);
  const num = (v) => (v === null || v === undefined ? "—" : v.toFixed(2).replace(".", ","));
  kv($("bt-figures"), [
    ["Resultado líquido", fmtMoney(s.net_pnl)],
    ["Retorno", pctFmt(r.total_return)],
    ["Sharpe", num(r.sharpe)],
    ["Drawdown máximo", pctFmt(r.max_drawdown)],
    ["Operações", String(t.trades)],
    ["Acerto", pctFmt(t.win_rate)],
    ["Custos", fmtMoney(s.costs)],
    ["IR estimado", fmtMoney(s.tax_estimate.total)],
  ]);
  drawEquity(job.equity);
}

async function loadBacktests() {
  const r = await api("GET", "/api/v1/backtests");
  if (r.status !== 200) return;
  $("bt-jobs").tBodies[0].replaceChildren(...r.body.data.slice(0, 10).map((j) =>
    el("tr", { "data-id": j.id, "data-status": j.status, onclick: () => followBacktest(j.id) },
      el("td", {}, j.id),
      el("td", {}, j.strategy),
      el("td", {}, j.symbols.join(", ")),
      el("td", {}, BT_STATUS[j.status] || j.status),
      el("td", { class: "num " + (j.summary ? signClass(j.summary.net_pnl) : "") }, j.summary ? fmtMoney(j.summary.net_pnl) : "—"))));
}

async function followBacktest(id) {
  clearTimeout(S.btTimer);
  const r = await api("GET", `/api/v1/backtests/${id}`);
  if (r.status !== 200) { $("bt-status").textContent = errText(r); return; }
  showBacktest(r.body);
  if (r.body.status === "queued" || r.body.status === "running") {
    S.btTimer = setTimeout(() => followBacktest(id), 500);
  } else {
    loadBacktests();
  }
}

async function runBacktest(ev) {
  ev.preventDefault();
  $("bt-error").textContent = "";
  let params;
  try { params = parseParams($("bt-params").value); } catch (e) { $("bt-error").textContent = e.message; return; }
  const body = {
    strategy: $("bt-strategy").value,
    symbols: $("bt-symbols").value.split(/[\s,]+/).filter(Boolean).map((s) => s.toUpperCase()),
    params,
  };
  if ($("bt-from").value) body.from = $("bt-from").value;
  if ($("bt-to").value) body.to = $("bt-to").value;
  const r = await api("POST", "/api/v1/backtests", body);
  if (r.status !== 202) { $("bt-error").textContent = errText(r); return; }
  loadBacktests();
  followBacktest(r.body.id);
}

// The report is served behind the API's authentication: fetched with the token, shown from a blob.
async function openReport() {
  if (!S.btShown) return;
  const resp = await fetch(`/api/v1/backtests/${S.btShown}/files/report.html`, { headers: { Authorization: "Bearer " + S.token } });
  if (!resp.ok) { $("bt-error").textContent = `HTTP ${resp.status}`; return; }
  const url = URL.createObjectURL(new Blob([await resp.text()], { type: "text/html" }));
  window.open(url, "_blank", "noopener");
}

async function initBacktests() {
  const r = await api("GET", "/api/v1/backtests/strategies");
  if (r.status !== 200) return;
  S.btKinds = new Map(r.body.data.map((k) => [k.name, k.about]));
  $("bt-strategy").replaceChildren(...r.body.data.map((k) => el("option", { value: k.name }, k.name)));
  $("bt-about").textContent = S.btKinds.get($("bt-strategy").value) || "";
  loadBacktests();
}

// ---- start -------------------------------------------------------------------------------------------------------

async function start() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("who").textContent = `${S.user} (${S.role})`;
  scheduleRefresh();
  const r = await api("GET", "/api/v1/market/instruments");
  if (r.status !== 200) return;
  S.instruments = new Map(r.body.data.map((i) => [i.symbol, i]));
  decimalsCache.clear();
  $("t-symbol").replaceChildren(...r.body.data.map((i) => el("option", { value: i.symbol }, i.symbol)));
  await Promise.all(r.body.data.map(async (i) => {
    const q = await api("GET", `/api/v1/market/quote?symbol=${i.symbol}`);
    const t = await api("GET", `/api/v1/market/trades?symbol=${i.symbol}&limit=1`);
    const m = S.market.get(i.symbol) || {};
    if (q.status === 200) { m.bid = q.body.bid?.price; m.ask = q.body.ask?.price; }
    if (t.status === 200 && t.body.data.length) { m.last = t.body.data[0].price; m.first = m.last; }
    S.market.set(i.symbol, m);
  }));
  r.body.data.forEach((i) => renderWatch(i.symbol));
  if (!S.chart) makeChart();
  select(S.selected || (S.instruments.has("PETR4") ? "PETR4" : r.body.data[0].symbol));
  connect();
  loadOrders();
  refreshPositions();
  refreshRisk();
  feedState();
  probeServices();
  initBacktests();
  refreshStrategies();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout());
  $("ticket").addEventListener("submit", sendOrder);
  $("t-symbol").addEventListener("change", () => { $("t-price").value = ""; select($("t-symbol").value); });
  $("t-type").addEventListener("change", updateTicketHint);
  $("chart-interval").addEventListener("change", loadCandles);
  $("kill-activate").addEventListener("click", () => openKillDialog(true));
  $("kill-release").addEventListener("click", () => openKillDialog(false));
  $("kill-confirm").addEventListener("click", confirmKill);
  $("bt-form").addEventListener("submit", runBacktest);
  $("bt-strategy").addEventListener("change", () => { $("bt-about").textContent = S.btKinds?.get($("bt-strategy").value) || ""; });
  $("bt-report").addEventListener("click", openReport);
  setInterval(() => { if (S.token) { refreshPositions(); feedState(); refreshStrategies(); } }, 2000);
  setInterval(() => { if (S.token && $("chart-interval").value !== "1m") loadCandles(); }, 5000);
  if (S.token) start(); else logout();
});
