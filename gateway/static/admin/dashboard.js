// The admin dashboard: reads /admin/status and /admin/usage/days with the admin key the
// operator typed (kept in this tab's sessionStorage, sent as a Bearer token) and draws
// them.  Data from the gateway (tenant ids and names, target names) only ever reaches the
// page as text nodes (textContent, append of strings), never as HTML.
"use strict";

(() => {
  const STORE = "aigw-admin-key";
  const REFRESH_MS = 15000;
  const DAY_S = 86400;
  const CHART_HEIGHT = 200;
  const PALETTE = ["#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6",
    "#ec4899", "#14b8a6", "#84cc16", "#f97316", "#64748b", "#a855f7"];
  const RANGES = [7, 14, 30];
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const usd = (digits) => new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
  const dayLabel = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  const STATES = {
    closed: "Closed",
    half_open: "Half-open · probing",
    open: "Open · cooling down",
  };

  const $ = (id) => document.getElementById(id);
  let charts = [];
  let timer = null;
  let rangeReady = false;
  let loading = 0; // the latest load: an older one that answers later is dropped

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** An element with attributes and children; strings become text nodes, never markup. */
  function node(tag, attrs, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") element.className = value;
      else element.setAttribute(name, value);
    }
    element.append(...children);
    return element;
  }

  function key() {
    return sessionStorage.getItem(STORE) || "";
  }

  async function api(path) {
    const response = await fetch(path, {
      headers: { Authorization: "Bearer " + key() },
      cache: "no-store",
    });
    let body = {};
    try {
      body = await response.json();
    } catch (_) {
      body = {};
    }
    if (!response.ok) throw new ApiError(response.status, body.error || "HTTP " + response.status);
    return body;
  }

  // --- what is shown: sign-in, loading, dashboard --------------------------------------

  function showSignin(message) {
    stopRefresh();
    destroyCharts();
    $("dashboard").hidden = true;
    $("toolbar").hidden = true;
    $("loading").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("key").focus();
  }

  function showDashboard() {
    $("signin").hidden = true;
    $("loading").hidden = true;
    $("dashboard").hidden = false;
    $("toolbar").hidden = false;
  }

  async function load() {
    stopRefresh();
    const mine = ++loading;
    let status;
    let usage;
    try {
      status = await api("/admin/status");
      setUpRange(status);
      usage = await api("/admin/usage/days?days=" + encodeURIComponent($("range").value));
    } catch (error) {
      if (mine !== loading) return;
      if (error.status === 401) {
        sessionStorage.removeItem(STORE);
        showSignin("That key was refused: it is not the gateway's admin.api_key.");
      } else if (error.status === 403) {
        sessionStorage.removeItem(STORE);
        showSignin(error.message);
      } else {
        showProblem("Could not reach the gateway (" + error.message + "); retrying.");
        scheduleRefresh();
      }
      return;
    }
    if (mine !== loading) return;
    showDashboard();
    $("problem").hidden = true;
    renderStatus(status);
    renderUsage(usage);
    const now = new Date().toISOString().slice(11, 19);
    $("updated").textContent = "Updated " + now + " UTC";
    $("dashboard").dataset.loads = String(Number($("dashboard").dataset.loads || 0) + 1);
    scheduleRefresh();
  }

  function showProblem(message) {
    if ($("dashboard").hidden) {
      $("signin").hidden = true;
      $("loading").hidden = true;
      $("dashboard").hidden = false;
      $("toolbar").hidden = false;
    }
    $("problem").textContent = message;
    $("problem").hidden = false;
  }

  function scheduleRefresh() {
    stopRefresh();
    timer = setTimeout(load, REFRESH_MS);
  }

  function stopRefresh() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  function setUpRange(status) {
    $("retention").textContent = status.retention_days + " days";
    if (rangeReady) return;
    const select = $("range");
    const choices = new Set(RANGES.filter((d) => d <= status.retention_days));
    choices.add(status.default_days);
    choices.add(status.retention_days);
    for (const days of [...choices].sort((a, b) => a - b)) {
      const label = days === status.retention_days ? "Last " + days + " days (all kept)" : "Last " + days + " days";
      select.append(node("option", { value: String(days) }, label));
    }
    select.value = String(status.default_days);
    rangeReady = true;
  }

  // --- now: cards and circuits -----------------------------------------------------------

  function setCard(id, text, tone) {
    const element = $(id);
    element.textContent = text;
    element.className = "value" + (tone ? " " + tone : "");
  }

  function renderStatus(status) {
    setCard("open-streams", integer.format(status.open_streams));

    const targets = Object.entries(status.targets);
    const count = (state) => targets.filter(([, t]) => t.state === state).length;
    const open = count("open");
    const half = count("half_open");
    if (!targets.length) setCard("circuits-value", "No targets yet");
    else if (open) setCard("circuits-value", open + " open", "bad");
    else if (half) setCard("circuits-value", half + " half-open", "warn");
    else setCard("circuits-value", "All closed", "good");
    $("circuits-sub").textContent = targets.length + " target" + (targets.length === 1 ? "" : "s") +
      " · " + count("closed") + " closed";

    const limiter = status.limiter;
    const backend = { redis: "Redis", memory: "In-process" }[limiter.backend] || limiter.backend;
    setCard("limiter-value", backend, limiter.redis === "down" ? "bad" : "");
    let redis = "Redis: " + limiter.redis;
    if (limiter.redis === "not configured") redis = "No Redis: limits hold per replica";
    if (limiter.unsettled !== undefined) redis += " · " + integer.format(limiter.unsettled) + " unsettled";
    $("limiter-sub").textContent = redis;

    setCard("mode-value", status.mode === "demo" ? "Demo mode" : "Live", status.mode === "demo" ? "warn" : "");
    $("mode-sub").textContent = status.draining ? "draining: new streams are refused" : "accepting streams";

    const order = { open: 0, half_open: 1, closed: 2 };
    targets.sort(([a, x], [b, y]) => (order[x.state] - order[y.state]) || a.localeCompare(b));
    const rows = targets.map(([name, t]) => node("tr", { "data-state": t.state },
      node("td", { class: "target" }, name),
      node("td", {}, node("span", { class: "badge " + t.state }, STATES[t.state] || t.state)),
      node("td", { class: "num" }, integer.format(t.recent_failures)),
      node("td", { class: "num" }, integer.format(t.trips))));
    if (!rows.length) {
      rows.push(node("tr", {}, node("td", { colspan: "4" }, "No request has reached a target yet.")));
    }
    $("circuit-rows").replaceChildren(...rows);
  }

  // --- usage: charts and the tenants table -----------------------------------------------

  function renderUsage(usage) {
    const xs = usage.days.map((day) => Date.parse(day + "T00:00:00Z") / 1000);
    const tenants = Object.entries(usage.tenants).map(([id, t], index) => {
      const sum = (field) => t.days.reduce((total, d) => total + d[field], 0);
      return {
        id,
        name: t.name,
        color: PALETTE[index % PALETTE.length],
        days: t.days,
        requests: sum("requests"),
        input: sum("input_tokens"),
        output: sum("output_tokens"),
        tokens: sum("tokens"),
        cost: sum("cost_usd"),
      };
    });
    const active = tenants.filter((t) => t.requests || t.tokens || t.cost)
      .sort((a, b) => b.requests - a.requests || a.id.localeCompare(b.id));

    const first = usage.days[0];
    const last = usage.days[usage.days.length - 1];
    $("range-label").textContent = formatDay(xs[0]) + " – " + formatDay(xs[xs.length - 1]) +
      " (" + usage.days.length + " days, UTC)";
    $("range-label").title = first + " to " + last;

    destroyCharts();
    const span = usage.days.length + "-day";
    drawChart("chart-requests", xs, active, "requests", span, {
      label: "requests", format: (v) => integer.format(v), axis: axisOf(integer), integers: true,
    });
    drawChart("chart-tokens", xs, active, "tokens", span, {
      label: "tokens", format: (v) => integer.format(v), axis: axisOf(compact), integers: true,
    });
    drawChart("chart-cost", xs, active, "cost_usd", span, {
      label: "USD", format: money, axis: axisMoney, integers: false,
    });
    renderTenants(tenants, active);
  }

  function renderTenants(tenants, active) {
    const idle = tenants.filter((t) => !active.includes(t));
    const rows = [...active, ...idle].map((t) => {
      const used = active.includes(t);
      const label = node("td", {},
        node("span", { class: "swatch" + (used ? "" : " none") }),
        node("span", { class: "tenant-id" }, t.id));
      if (used) label.firstChild.style.background = t.color;
      if (t.name) label.append(node("span", { class: "tenant-name" }, t.name));
      return node("tr", { class: used ? "" : "idle", "data-tenant": t.id }, label,
        node("td", { class: "num" }, integer.format(t.requests)),
        node("td", { class: "num" }, integer.format(t.input)),
        node("td", { class: "num" }, integer.format(t.output)),
        node("td", { class: "num" }, money(t.cost)));
    });
    $("tenant-rows").replaceChildren(...rows);
    const total = (field) => tenants.reduce((sum, t) => sum + t[field], 0);
    $("tenant-total").replaceChildren(node("tr", {},
      node("td", {}, "All tenants"),
      node("td", { class: "num" }, integer.format(total("requests"))),
      node("td", { class: "num" }, integer.format(total("input"))),
      node("td", { class: "num" }, integer.format(total("output"))),
      node("td", { class: "num" }, money(total("cost")))));
  }

  /** Stacked bars, one series per tenant: series k is drawn up to the sum of tenants
   *  0..k, the tallest first, so each tenant shows as its own segment.  The legend says
   *  each tenant's own value at the hovered day, and its total over the range otherwise. */
  function drawChart(id, xs, tenants, field, span, unit) {
    const container = $(id);
    container.replaceChildren();
    if (!tenants.length) {
      container.append(node("p", { class: "empty" }, "No usage in this range."));
      return;
    }
    const own = tenants.map((t) => t.days.map((d) => d[field]));
    const stacked = [];
    own.forEach((values, k) => {
      stacked.push(values.map((v, i) => v + (k ? stacked[k - 1][i] : 0)));
    });
    const totals = own.map((values) => values.reduce((a, b) => a + b, 0));
    const order = tenants.map((_, k) => k).reverse();
    const bars = uPlot.paths.bars({ size: [0.7, 56], gap: 0 });
    const series = [{
      label: "Day",
      value: (u, ts) => (ts == null ? span + " total" : formatDay(ts)),
    }];
    for (const k of order) {
      series.push({
        label: tenants[k].id,
        stroke: tenants[k].color,
        fill: tenants[k].color,
        width: 0,
        paths: bars,
        points: { show: false },
        value: (u, v, s, i) => unit.format(i == null ? totals[k] : own[k][i]),
      });
    }
    const options = {
      width: Math.max(container.clientWidth, 280),
      height: CHART_HEIGHT,
      padding: [10, 8, 0, 0],
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true, range: (u, min, max) => [min - DAY_S / 2, max + DAY_S / 2] },
        y: { range: (u, min, max) => [0, niceMax(max, unit.integers)] },
      },
      axes: [
        {
          stroke: "#656d76",
          grid: { show: false },
          ticks: { stroke: "#d8dee4", size: 4 },
          size: 30,
          space: 44,
          incrs: [DAY_S, 2 * DAY_S, 7 * DAY_S, 14 * DAY_S],
          values: (u, splits) => splits.map(formatDay),
        },
        {
          stroke: "#656d76",
          grid: { stroke: "#eef1f4" },
          ticks: { show: false },
          label: unit.label,
          labelSize: 16,
          labelFont: "600 11px system-ui, sans-serif",
          size: 58,
          incrs: unit.integers ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4,
            1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 1e9] : undefined,
          values: (u, splits) => unit.axis(splits),
        },
      ],
      series,
    };
    const data = [xs, ...order.map((k) => stacked[k])];
    const chart = new uPlot(options, data, container);
    charts.push({ chart, container });
  }

  function niceMax(max, integers) {
    if (!(max > 0)) return integers ? 5 : 1;
    const padded = max * 1.08;
    const step = Math.pow(10, Math.floor(Math.log10(padded)));
    const nice = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].find((m) => m * step >= padded) * step;
    return integers ? Math.max(Math.ceil(nice), 5) : nice;
  }

  function money(value) {
    if (value === 0) return usd(2).format(0);
    return usd(Math.abs(value) < 1 ? 4 : 2).format(value);
  }

  function axisOf(format) {
    return (splits) => splits.map((v) => format.format(v));
  }

  /** Dollar ticks with as many decimals as their step needs (at least cents). */
  function axisMoney(splits) {
    const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 1;
    const digits = Math.min(Math.max(2, Math.ceil(-Math.log10(step) - 1e-9)), 6);
    const format = usd(digits);
    return splits.map((v) => format.format(v));
  }

  function formatDay(ts) {
    return dayLabel.format(new Date(ts * 1000));
  }

  function destroyCharts() {
    for (const { chart } of charts) chart.destroy();
    charts = [];
  }

  function resize() {
    for (const { chart, container } of charts) {
      chart.setSize({ width: Math.max(container.clientWidth, 280), height: CHART_HEIGHT });
    }
  }

  // --- wiring -----------------------------------------------------------------------------

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("key").value.trim();
    if (!value) return;
    sessionStorage.setItem(STORE, value);
    $("key").value = "";
    $("signin").hidden = true;
    $("loading").hidden = false;
    load();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    showSignin("");
  });
  $("refresh").addEventListener("click", load);
  $("range").addEventListener("change", load);
  let resizing = null;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(resize);
  });

  if (key()) {
    $("loading").hidden = false;
    load();
  } else {
    showSignin("");
  }
})();
