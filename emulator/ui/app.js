// The emulator's dashboard. Plain ES modules, no build step, nothing loaded from another host.
//
// Data: the sandboxes and their keys from GET /_emulator/sandboxes; a sandbox's catalogue,
// ledger, events, webhooks and usage from /v1 with its own keys (reads with its restricted key);
// clocks, faults and the request journal from /_emulator. The journal is polled with its cursor
// about once a second; a new request of the selected sandbox (not one of the page's own) makes
// the open tab read again, so the page stays current without polling /v1. Without a journal
// (an emulator started with --journal-size 0, or an older one) the open tab is read every few
// seconds instead.

import { ApiError, OWN_REQUEST_PREFIX, admin, pages, sandboxClient, takeTokenFromUrl, token } from "./api.js";
import { h, json, num, pill, replace, statusClass, table, time } from "./view.js";

const JOURNAL_POLL_MS = 1000;
const FALLBACK_POLL_MS = 4000;
const CLOCK_POLL_MS = 5000;
// Entries the journal panel keeps (newest first); older ones leave the page.
const JOURNAL_KEPT_MAX = 500;
// Events and ledger movements kept per sandbox view.
const TAIL_MAX = 200;

const $ = (id) => document.getElementById(id);

const state = {
  sandboxes: [],
  sandboxCursor: null,
  selected: null,
  tab: "stock",
  perSandboxClock: null, // unknown until asked
  journal: { available: null, cursor: null, caughtUp: false, entries: [], seen: new Set(), paused: false },
  events: new Map(), // sandbox id → { list, lastId }
  refreshTimer: null,
  refreshing: null, // the read of the open tab under way
  refreshQueued: null, // the one that follows it, when asked for meanwhile
};

// ---------- status line and errors ----------

function say(text, kind = "") {
  const el = $("status");
  el.textContent = text;
  el.className = `status ${kind}`;
}

function failed(e) {
  if (e instanceof ApiError && e.status === 401 && e.path.startsWith("/_emulator")) {
    askToken();
    return;
  }
  say(e.message + (e.code ? ` (${e.code})` : ""), "error");
}

function askToken(message = "") {
  const dialog = $("login");
  $("login-error").textContent = message;
  if (!dialog.open) dialog.showModal();
  $("login-token").focus();
}

// ---------- sandboxes ----------

function current() {
  return state.sandboxes.find((s) => s.id === state.selected) || null;
}

async function loadSandboxes(more = false) {
  const cursor = more ? state.sandboxCursor : null;
  const page = await admin.get(`/_emulator/sandboxes?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  state.sandboxes = more ? state.sandboxes.concat(page.data) : page.data;
  state.sandboxCursor = page.next_cursor;
  renderSandboxes();
  if (!current() && state.sandboxes.length) {
    const wanted = new URLSearchParams(location.hash.slice(1)).get("sandbox");
    const pick = state.sandboxes.find((s) => s.id === wanted) || state.sandboxes[state.sandboxes.length - 1];
    await select(pick.id);
  } else if (!state.sandboxes.length) {
    state.selected = null;
    $("sandbox").hidden = true;
    say("No sandbox yet: POST /v1/sandboxes makes one.");
  }
}

function renderSandboxes() {
  $("sandbox-count").textContent = state.sandboxes.length ? `(${state.sandboxes.length}${state.sandboxCursor ? "+" : ""})` : "";
  $("more-sandboxes").hidden = !state.sandboxCursor;
  replace(
    $("sandboxes"),
    state.sandboxes.map((s) =>
      h(
        "li",
        {},
        h(
          "button",
          { type: "button", class: "sandbox", dataset: { id: s.id }, "aria-current": s.id === state.selected ? "true" : false, onclick: () => select(s.id) },
          h("span", { class: "name" }, s.name),
          pill(s.plan, `plan-${s.plan}`),
          h("code", { class: "dim id" }, s.id),
        ),
      ),
    ),
  );
}

async function select(id) {
  state.selected = id;
  const params = new URLSearchParams(location.hash.slice(1));
  params.set("sandbox", id);
  history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
  renderSandboxes();
  const s = current();
  $("sandbox").hidden = false;
  $("sb-name").textContent = s.name;
  $("sb-id").textContent = s.id;
  $("sb-plan").textContent = s.plan;
  await refresh();
}

// ---------- the selected sandbox: clock and usage ----------

async function loadClock(s) {
  if (state.perSandboxClock !== false) {
    try {
      const c = await admin.get(`/_emulator/sandboxes/${encodeURIComponent(s.id)}/clock`);
      if (state.perSandboxClock === null) {
        // Per-sandbox clocks come with faults scoped to a sandbox: arm for this one by default.
        document.querySelector('#fault-form [name="this_sandbox"]').checked = true;
      }
      state.perSandboxClock = true;
      $("sb-clock").textContent = time(c.now);
      $("sb-clock-scope").textContent = "this sandbox";
      return;
    } catch (e) {
      // No per-sandbox clocks in this emulator: its one clock is every sandbox's.
      if (!(e instanceof ApiError && e.status === 404 && state.perSandboxClock === null)) throw e;
      state.perSandboxClock = false;
    }
  }
  const c = await admin.get("/_emulator/clock");
  $("sb-clock").textContent = time(c.now);
  $("sb-clock-scope").textContent = "emulator clock (shared by every sandbox)";
}

async function loadUsage(s) {
  const u = await sandboxClient(s).get("/v1/usage");
  replace(
    $("sb-usage"),
    u.meters.map((m) => {
      const ratio = m.quota ? Math.min(1, m.quantity / m.quota) : 0;
      const meter = h("meter", { min: "0", max: String(m.quota || 1), value: String(Math.min(m.quantity, m.quota || 1)), high: String((m.quota || 1) * 0.8), optimum: "0" });
      return h(
        "div",
        { class: `meter ${ratio >= 1 ? "over" : ""}`, title: `${m.meter}: ${m.quantity} of ${m.quota}${m.hard ? " (hard quota)" : ""} in ${u.period}` },
        h("span", { class: "dim" }, m.meter.replace(/_/g, " ")),
        meter,
        h("span", { class: "mono" }, `${num(m.quantity)} / ${num(m.quota)}`),
      );
    }),
  );
}

// ---------- tabs ----------

const tabs = {
  async stock(s, el) {
    const c = sandboxClient(s);
    const [items, locations, levels] = await Promise.all([
      pages(c.get, "/v1/items", { pagesMax: 5 }),
      pages(c.get, "/v1/locations", { pagesMax: 5 }),
      pages(c.get, "/v1/stock-levels", { pagesMax: 10 }),
    ]);
    const code = new Map(locations.data.map((l) => [l.id, l.code]));
    const byItem = new Map();
    for (const l of levels.data) {
      if (!byItem.has(l.item_id)) byItem.set(l.item_id, []);
      byItem.get(l.item_id).push(l);
    }
    const rows = items.data.map((it) => {
      const ls = byItem.get(it.id) || [];
      const total = ls.reduce((a, l) => a + l.quantity, 0);
      const low = it.low_stock_threshold !== null && it.low_stock_threshold !== undefined && total < it.low_stock_threshold;
      return h(
        "tr",
        { class: it.status === "archived" ? "archived" : "", dataset: { sku: it.sku } },
        h("td", { class: "mono sku" }, it.sku),
        h("td", {}, it.name),
        h("td", { class: "dim" }, it.unit || ""),
        h("td", {}, it.status === "archived" ? pill("archived") : ""),
        h("td", { class: `num mono total ${low ? "low" : ""}`, title: low ? `below its threshold of ${it.low_stock_threshold}` : "" }, num(total)),
        h(
          "td",
          { class: "levels" },
          ls.map((l) => h("span", { class: "level", title: `version ${l.version}, updated ${time(l.updated_at)}` }, h("span", { class: "dim" }, code.get(l.location_id) || l.location_id), " ", h("b", { class: "mono" }, num(l.quantity)))),
        ),
      );
    });
    replace(
      el,
      h("h3", {}, `Items (${items.data.length}${items.complete ? "" : "+"}) and their stock levels`),
      table(["SKU", "name", "unit", "", "on hand ", "by location"], rows, { empty: "No items yet." }),
      h("h3", {}, `Locations (${locations.data.length}${locations.complete ? "" : "+"})`),
      table(
        ["code", "name", "kind", "id"],
        locations.data.map((l) => h("tr", {}, h("td", { class: "mono" }, l.code), h("td", {}, l.name), h("td", { class: "dim" }, l.kind), h("td", { class: "mono dim" }, l.id))),
        { empty: "No locations yet." },
      ),
    );
  },

  async ledger(s, el) {
    const c = sandboxClient(s);
    const [movements, items, locations] = await Promise.all([
      movementTail(c),
      pages(c.get, "/v1/items", { pagesMax: 5 }),
      pages(c.get, "/v1/locations", { pagesMax: 5 }),
    ]);
    const sku = new Map(items.data.map((i) => [i.id, i.sku]));
    const code = new Map(locations.data.map((l) => [l.id, l.code]));
    const rows = movements.map((m) =>
      h(
        "tr",
        {},
        h("td", { class: "num mono" }, m.sequence),
        h("td", {}, pill(m.type, `t-${m.type}`), m.reverses ? h("span", { class: "dim" }, ` ↺ ${m.reverses}`) : ""),
        h("td", { class: "mono" }, sku.get(m.item_id) || m.item_id),
        h(
          "td",
          { class: "lines" },
          m.lines.map((l) =>
            h("span", { class: "line" }, h("span", { class: "dim" }, code.get(l.location_id) || l.location_id), " ", h("b", { class: `mono ${l.delta < 0 ? "neg" : "pos"}` }, (l.delta > 0 ? "+" : "") + l.delta), h("span", { class: "dim" }, ` → ${l.quantity_after}`)),
          ),
        ),
        h("td", { class: "dim" }, m.reference || m.reason || ""),
        h("td", { class: "mono dim" }, time(m.created_at)),
        h("td", { class: "mono dim" }, m.id),
      ),
    );
    replace(el, h("h3", {}, "Ledger, newest first"), table(["#seq", "type", "item", "lines", "reference", "at", "id"], rows, { empty: "No movements yet." }));
  },

  async events(s, el) {
    const c = sandboxClient(s);
    let cache = state.events.get(s.id);
    if (!cache) {
      cache = { list: [], lastId: null, complete: false };
      state.events.set(s.id, cache);
    }
    const path = cache.lastId ? `/v1/events?after=${encodeURIComponent(cache.lastId)}` : "/v1/events";
    const got = await pages(c.get, path, { pagesMax: 10 });
    if (got.data.length) {
      cache.list = cache.list.concat(got.data).slice(-TAIL_MAX);
      cache.lastId = got.data[got.data.length - 1].id;
    }
    cache.complete = got.complete;
    const rows = cache.list
      .slice()
      .reverse()
      .map((e) =>
        h(
          "tr",
          {},
          h("td", { class: "mono dim" }, time(e.created_at)),
          h("td", {}, pill(e.type, "event")),
          h("td", {}, h("details", {}, h("summary", { class: "mono" }, e.id), h("pre", {}, json(e.data)))),
        ),
      );
    replace(el, h("h3", {}, "Events, newest first", cache.complete ? "" : h("span", { class: "dim" }, " (still reading older ones)")), table(["at", "type", "event"], rows, { empty: "No events yet." }));
  },

  async webhooks(s, el) {
    const c = sandboxClient(s);
    const [endpoints, deliveries] = await Promise.all([pages(c.get, "/v1/webhook-endpoints", { pagesMax: 5 }), pages(c.get, "/v1/webhook-deliveries", { pagesMax: 10 })]);
    replace(
      el,
      h("h3", {}, "Endpoints"),
      table(
        ["url", "events", "state", "id"],
        endpoints.data.map((e) => h("tr", {}, h("td", { class: "mono" }, e.url), h("td", { class: "dim" }, e.event_types.join(", ")), h("td", {}, e.enabled ? pill("enabled", "ok") : pill("disabled", "bad")), h("td", { class: "mono dim" }, e.id))),
        { empty: "No webhook endpoints." },
      ),
      h("h3", {}, `Deliveries, newest first (${deliveries.data.length}${deliveries.complete ? "" : "+"})`),
      deliveryTable(deliveries.data.slice().reverse(), s),
    );
  },

  async dead(s, el) {
    const c = sandboxClient(s);
    const dead = await pages(c.get, "/v1/webhook-deliveries?status=dead", { pagesMax: 10 });
    setDeadCount(dead.data.length, dead.complete);
    replace(
      el,
      h("h3", {}, "Dead letters: deliveries that used up their retries"),
      h("p", { class: "dim" }, "Replay sends one again now, with the same webhook-id and a fresh retry schedule."),
      deliveryTable(dead.data.slice().reverse(), s, { replay: true }),
    );
  },

  async requests() {
    renderJournal();
  },

  async faults(s, el) {
    const list = await admin.get("/_emulator/faults");
    replace(
      $("faults"),
      h("h3", {}, "Armed faults"),
      table(
        ["action", "method", "path prefix", "sandbox", "status", "delay ms", "remaining ", "id"],
        list.data.map((f) =>
          h("tr", {}, h("td", {}, pill(f.action, "bad")), h("td", {}, f.method || "any"), h("td", { class: "mono" }, f.path_prefix || "any"), h("td", { class: "mono dim" }, f.sandbox_id || "any"), h("td", {}, f.status), h("td", {}, f.action === "delay" ? f.delay_ms : "—"), h("td", { class: "num" }, f.remaining), h("td", { class: "mono dim" }, f.id)),
        ),
        { empty: "No fault armed." },
      ),
    );
    return el;
  },
};

function setDeadCount(n, complete = true) {
  const badge = $("dead-count");
  badge.hidden = n === 0;
  badge.textContent = `${n}${complete ? "" : "+"}`;
}

function deliveryTable(list, s, { replay = false } = {}) {
  const rows = list.map((d) =>
    h(
      "tr",
      { dataset: { delivery: d.id } },
      h("td", {}, pill(d.status, `d-${d.status}`)),
      h("td", {}, d.event_type),
      h(
        "td",
        {},
        h(
          "details",
          {},
          h("summary", {}, `${d.attempts.length} attempt${d.attempts.length === 1 ? "" : "s"}`),
          h(
            "ol",
            { class: "attempts" },
            d.attempts.map((a) => h("li", {}, h("span", { class: "mono dim" }, time(a.at)), " ", h("span", { class: `mono ${statusClass(a.status_code)}` }, a.status_code ?? "—"), " ", h("span", { class: "dim" }, `${a.duration_ms} ms`), a.error ? h("span", { class: "error" }, ` ${a.error}`) : "")),
          ),
        ),
      ),
      h("td", { class: "mono dim" }, d.next_attempt_at ? time(d.next_attempt_at) : "—"),
      h("td", { class: "mono dim" }, d.id),
      replay ? h("td", {}, h("button", { type: "button", class: "replay", onclick: (ev) => replayDelivery(s, d, ev.currentTarget) }, "replay")) : null,
    ),
  );
  return table(["status", "event", "attempts", "next attempt", "id", ...(replay ? [""] : [])], rows, { empty: replay ? "The dead-letter queue is empty." : "No deliveries yet." });
}

async function replayDelivery(s, d, button) {
  button.disabled = true;
  try {
    await sandboxClient(s).post(`/v1/webhook-deliveries/${encodeURIComponent(d.id)}/replay`);
    say(`Replayed ${d.id}.`, "ok");
  } catch (e) {
    failed(e);
  }
  await refresh();
}

// The newest movements: the list is in sequence order, so find the last sequence with a few
// `after_sequence` probes (sequences are gap-free) and read the page before it.
async function movementTail(c) {
  const first = await c.get("/v1/stock-movements?limit=100");
  if (!first.next_cursor) return first.data.slice().reverse();
  let lo = first.data[first.data.length - 1].sequence;
  let step = 100;
  let hi = null;
  for (let i = 0; i < 48 && hi === null; i++) {
    const r = await c.get(`/v1/stock-movements?after_sequence=${lo + step}&limit=1`);
    if (r.data.length) {
      lo = r.data[0].sequence;
      step *= 2;
    } else {
      hi = lo + step;
    }
  }
  for (let i = 0; i < 64 && hi - lo > 100; i++) {
    const mid = Math.floor((lo + hi) / 2);
    const r = await c.get(`/v1/stock-movements?after_sequence=${mid}&limit=1`);
    if (r.data.length) lo = r.data[0].sequence;
    else hi = mid;
  }
  const tail = await c.get(`/v1/stock-movements?after_sequence=${Math.max(0, hi - 100)}&limit=100`);
  return tail.data.slice(-TAIL_MAX).reverse();
}

// ---------- refreshing ----------

// Reads the open tab of the selected sandbox again. Asked while a read is under way (a tab
// clicked, a sandbox picked, a replay done), it runs once more after that one ends: the read
// under way may be of the tab or sandbox shown before, so it is never enough on its own. Asks
// made meanwhile share that one next read, and each caller's promise settles when it has run.
function refresh() {
  if (!state.refreshing) {
    state.refreshing = refreshOnce().finally(() => {
      state.refreshing = null;
    });
    return state.refreshing;
  }
  if (!state.refreshQueued) {
    const next = () => {
      state.refreshQueued = null;
      return refresh();
    };
    state.refreshQueued = state.refreshing.then(next, next);
  }
  return state.refreshQueued;
}

async function refreshOnce() {
  const s = current();
  if (!s) return;
  // An error shown before this read is cleared when the read succeeds; a newer message stays.
  const shown = $("status").classList.contains("error") ? $("status").textContent : null;
  try {
    const el = $(`tab-${state.tab}`);
    const work = [loadClock(s), loadUsage(s), tabs[state.tab](s, el)];
    if (state.tab !== "dead") work.push(countDead(s));
    await Promise.all(work);
    if (shown !== null && $("status").textContent === shown) say("");
  } catch (e) {
    failed(e);
  }
}

async function countDead(s) {
  const dead = await sandboxClient(s).get("/v1/webhook-deliveries?status=dead&limit=100");
  setDeadCount(dead.data.length, !dead.next_cursor);
}

function refreshSoon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, 250);
}

function showTab(name) {
  state.tab = name;
  for (const b of document.querySelectorAll("#tabs [role=tab]")) {
    const on = b.dataset.tab === name;
    b.setAttribute("aria-selected", on ? "true" : "false");
    b.tabIndex = on ? 0 : -1;
  }
  for (const p of document.querySelectorAll(".tab")) p.hidden = p.id !== `tab-${name}`;
  say("");
  refresh();
}

// ---------- the request journal ----------

async function pollJournal() {
  const j = state.journal;
  if (j.available === false || j.paused) return;
  let changed = false;
  let touched = false;
  let sandboxesChanged = false;
  try {
    for (let i = 0; i < 20; i++) {
      const path = `/_emulator/requests?limit=100${j.cursor ? `&cursor=${encodeURIComponent(j.cursor)}` : ""}`;
      const page = await admin.get(path);
      j.available = true;
      $("live").hidden = false;
      for (const e of page.data) {
        if (j.seen.has(e.id)) continue;
        j.seen.add(e.id);
        j.entries.unshift(e);
        changed = true;
        const own = String(e.request_id || "").startsWith(OWN_REQUEST_PREFIX);
        // Only what arrives after the page caught up with the journal is news.
        if (!j.caughtUp || own) continue;
        if (e.sandbox_id && e.sandbox_id === state.selected) touched = true;
        if (e.path === "/v1/sandboxes" || e.path === "/v1/sandbox") sandboxesChanged = true;
      }
      // The cursor is an entry's id and the page holds what came after it: the last id seen
      // is where the next poll starts, also at the end of the journal (next_cursor null).
      if (page.data.length) j.cursor = page.data[page.data.length - 1].id;
      if (!page.next_cursor) {
        j.caughtUp = true;
        break;
      }
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && j.available === null) {
      j.available = false;
      $("tab-requests").replaceChildren(h("p", { class: "dim" }, "This emulator keeps no request journal (it was started with --journal-size 0, or has no /_emulator/requests): the open tab is read again every few seconds instead."));
      setInterval(() => {
        if (!document.hidden) refresh();
      }, FALLBACK_POLL_MS);
      return;
    }
    failed(e);
  }
  if (j.entries.length > JOURNAL_KEPT_MAX) {
    for (const old of j.entries.splice(JOURNAL_KEPT_MAX)) {
      j.seen.delete(old.id);
      journalNodes.delete(old.id);
    }
  }
  if (changed && state.tab === "requests") renderJournal();
  if (sandboxesChanged) await loadSandboxes().catch(failed);
  if (touched) refreshSoon();
}

function headerLines(headers) {
  if (!headers) return "";
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  return pairs.map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join("\n");
}

// One element per entry, made once and kept while the entry is: a re-render moves the same
// elements, so an entry opened to its exchange stays open as new ones arrive above it.
const journalNodes = new Map();

function journalNode(e) {
  let node = journalNodes.get(e.id);
  if (node) return node;
  const target = e.path + (e.query ? `?${e.query}` : "");
  node = h(
    "details",
    { class: "entry", dataset: { requestId: e.request_id || "", path: e.path } },
    h(
      "summary",
      {},
      h("span", { class: "mono dim" }, time(e.at)),
      h("span", { class: `mono status ${statusClass(e.status)}` }, e.status),
      h("span", { class: "mono method" }, e.method),
      h("span", { class: "mono path", title: target }, target),
      h("span", { class: "mono dim num" }, e.duration_us !== undefined ? `${(e.duration_us / 1000).toFixed(1)} ms` : ""),
      h(
        "span",
        { class: "marks" },
        e.idempotent_replayed ? pill("replayed", "warn") : "",
        e.fault ? pill(`fault: ${typeof e.fault === "string" ? e.fault : e.fault.action || "armed"}`, "bad") : "",
        e.idempotency_key ? h("span", { class: "mono dim idem", title: `Idempotency-Key: ${e.idempotency_key}` }, `key ${e.idempotency_key}`) : "",
      ),
      h("span", { class: "mono dim rid", title: e.request_id }, e.request_id),
    ),
  );
  // The exchange is built when first opened: most entries never are.
  node.addEventListener("toggle", () => {
    if (!node.open || node.querySelector(".exchange")) return;
    const message = (title, m) =>
      h(
        "div",
        {},
        h("h4", {}, title, m?.truncated ? h("span", { class: "dim" }, ` (truncated; ${num(m.size_bytes)} bytes in all)`) : ""),
        h("pre", { class: "headers" }, headerLines(m?.headers)),
        m?.body === null || m?.body === undefined ? h("p", { class: "dim" }, "no body") : h("pre", {}, json(m.body)),
      );
    node.append(h("div", { class: "exchange" }, message("request", e.request), message("response", e.response)));
  });
  journalNodes.set(e.id, node);
  return node;
}

function renderJournal() {
  const j = state.journal;
  if (j.available === false) return;
  const onlyThis = $("journal-this").checked;
  const own = $("journal-own").checked;
  const shown = j.entries.filter((e) => (own || !String(e.request_id || "").startsWith(OWN_REQUEST_PREFIX)) && (!onlyThis || e.sandbox_id === state.selected));
  $("journal-count").textContent = `${shown.length} shown of the last ${j.entries.length}`;
  replace($("journal"), shown.length ? shown.map(journalNode) : h("p", { class: "empty dim" }, "No requests yet: they appear here as they arrive."));
}

// ---------- controls ----------

async function advance(seconds) {
  const s = current();
  if (!s) return;
  if (!Number.isInteger(seconds) || seconds < 0) {
    say("Give a whole number of seconds (0 or more).", "error");
    return;
  }
  try {
    const path = state.perSandboxClock === false ? "/_emulator/clock/advance" : `/_emulator/sandboxes/${encodeURIComponent(s.id)}/clock/advance`;
    const c = await admin.post(path, { seconds });
    say(`Clock advanced ${num(seconds)} s to ${time(c.now)}${state.perSandboxClock === false ? " (every sandbox)" : ""}.`, "ok");
  } catch (e) {
    failed(e);
  }
  await refresh();
}

async function armFault(form) {
  const f = new FormData(form);
  const spec = { action: f.get("action"), times: Number(f.get("times")) };
  if (f.get("method")) spec.method = f.get("method");
  if (f.get("path_prefix")) spec.path_prefix = f.get("path_prefix");
  if (f.get("status")) spec.status = Number(f.get("status"));
  if (f.get("delay_ms")) spec.delay_ms = Number(f.get("delay_ms"));
  if (f.get("this_sandbox") && state.selected) spec.sandbox_id = state.selected;
  try {
    const fault = await admin.post("/_emulator/faults", spec);
    say(`Armed ${fault.id}.`, "ok");
  } catch (e) {
    failed(e);
    if (e.problem?.errors?.length) say(`${e.message} ${e.problem.errors.map((x) => `${x.field}: ${x.message}`).join("; ")}`, "error");
  }
  await refresh();
}

function bind() {
  for (const b of document.querySelectorAll("#tabs [role=tab]")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
    b.setAttribute("aria-controls", `tab-${b.dataset.tab}`);
    b.tabIndex = b.dataset.tab === state.tab ? 0 : -1;
  }
  $("tabs").addEventListener("keydown", (ev) => {
    const all = [...document.querySelectorAll("#tabs [role=tab]")];
    const i = all.indexOf(document.activeElement);
    if (i < 0 || !["ArrowLeft", "ArrowRight"].includes(ev.key)) return;
    const next = all[(i + (ev.key === "ArrowRight" ? 1 : all.length - 1)) % all.length];
    next.focus();
    showTab(next.dataset.tab);
  });
  for (const b of document.querySelectorAll("[data-advance]")) b.addEventListener("click", () => advance(Number(b.dataset.advance)));
  $("advance-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    advance(Number($("advance-seconds").value));
  });
  $("fault-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    armFault(ev.currentTarget);
  });
  $("clear-faults").addEventListener("click", async () => {
    try {
      await admin.del("/_emulator/faults");
      say("Every fault disarmed.", "ok");
    } catch (e) {
      failed(e);
    }
    refresh();
  });
  $("more-sandboxes").addEventListener("click", () => loadSandboxes(true).catch(failed));
  $("journal-this").addEventListener("change", renderJournal);
  $("journal-own").addEventListener("change", renderJournal);
  $("journal-pause").addEventListener("click", (ev) => {
    state.journal.paused = !state.journal.paused;
    ev.currentTarget.textContent = state.journal.paused ? "resume" : "pause";
    $("live").hidden = state.journal.paused;
  });
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    token.set($("login-token").value);
    try {
      await admin.get("/_emulator/clock");
      $("login").close();
      $("forget-token").hidden = false;
      await start();
    } catch (e) {
      token.clear();
      askToken(e.status === 401 ? "That is not this emulator's admin token." : e.message);
    }
  });
  $("forget-token").addEventListener("click", () => {
    token.clear();
    location.reload();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest("input, select, textarea, dialog")) return;
    const names = ["stock", "ledger", "events", "webhooks", "dead", "requests", "faults"];
    if (/^[1-7]$/.test(ev.key)) showTab(names[Number(ev.key) - 1]);
    else if (ev.key === "r") refresh();
    else if (ev.key === "j" || ev.key === "k") {
      const i = state.sandboxes.findIndex((s) => s.id === state.selected);
      const next = state.sandboxes[i + (ev.key === "j" ? 1 : -1)];
      if (next) {
        select(next.id);
        document.querySelector(`.sandbox[data-id="${next.id}"]`)?.focus();
      }
    }
  });
}

async function tickClock() {
  try {
    const c = await admin.get("/_emulator/clock");
    $("global-clock").textContent = time(c.now);
    const health = await admin.get("/_emulator/health");
    $("health").textContent = `v${health.version}`;
    $("health").className = "pill ok";
  } catch (e) {
    $("health").textContent = "unreachable";
    $("health").className = "pill bad";
    if (e instanceof ApiError && e.status === 401) askToken();
  }
}

let started = false;
async function start() {
  $("forget-token").hidden = !token.get();
  try {
    await loadSandboxes();
  } catch (e) {
    failed(e);
    return;
  }
  if (started) return;
  started = true;
  await tickClock();
  setInterval(tickClock, CLOCK_POLL_MS);
  const loop = async () => {
    await pollJournal();
    if (state.journal.available !== false) setTimeout(loop, JOURNAL_POLL_MS);
  };
  loop();
}

takeTokenFromUrl();
bind();
start();
