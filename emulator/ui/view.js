// Small DOM and formatting helpers: elements are built with h(), never from HTML strings, so
// nothing the API answers is ever parsed as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

export function table(headers, rows, { empty = "nothing yet", cls = "" } = {}) {
  if (!rows.length) return h("p", { class: "empty dim" }, empty);
  return h(
    "table",
    { class: cls },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { class: t.startsWith("#") || t.endsWith(" ") ? "num" : "" }, t.trim())))),
    h("tbody", {}, rows),
  );
}

export const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));

// "2030-01-01T00:00:00Z" → "2030-01-01 00:00:00" (UTC, like the API).
export function time(t) {
  if (!t) return "—";
  return String(t).replace("T", " ").replace(/(\.\d+)?Z$/, "");
}

export function json(value) {
  if (value === undefined) return "";
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

export function statusClass(status) {
  if (!status) return "s-none";
  if (status >= 500) return "s-5xx";
  if (status >= 400) return "s-4xx";
  if (status >= 300) return "s-3xx";
  return "s-2xx";
}

export function pill(text, cls = "") {
  return h("span", { class: `pill ${cls}` }, text);
}
