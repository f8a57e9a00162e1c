// How the dashboard talks to the emulator: the control plane (/_emulator, with the admin token
// when the emulator has one) and the product API (/v1, with a sandbox's own keys).
//
// The token comes from the URL's fragment (#token=…, never sent to a server), or from the login
// dialog; it is kept in this tab's sessionStorage only and never written into the page.

const TOKEN_KEY = "twh.adminToken";
// Every request the page makes carries a request id with this prefix, so the request journal
// can tell the dashboard's own requests from the ones it is there to show.
export const OWN_REQUEST_PREFIX = "dash_";
// Longest a single call may take before the page gives up on it.
const TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(status, problem, path) {
    super(problem?.detail || problem?.title || `HTTP ${status} from ${path}`);
    this.status = status;
    this.code = problem?.code || null;
    this.problem = problem;
    this.path = path;
  }
}

export function takeTokenFromUrl() {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = hash.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    hash.delete("token");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

// crypto.randomUUID needs a secure context; getRandomValues works on a plain-http --host too.
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "dash-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

let counter = 0;
function requestId() {
  counter += 1;
  return `${OWN_REQUEST_PREFIX}${Date.now().toString(36)}${counter.toString(36)}`;
}

async function call(method, path, { bearer, body, idempotent } = {}) {
  const headers = { "X-Request-Id": requestId(), Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotent) headers["Idempotency-Key"] = randomKey();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, { detail: `The emulator did not answer (${e.name === "AbortError" ? "timeout" : e.message}).` }, path);
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json, path);
  return json;
}

// The control plane: /_emulator/…
export const admin = {
  get: (path) => call("GET", path, { bearer: token.get() }),
  post: (path, body = {}) => call("POST", path, { bearer: token.get(), body }),
  del: (path) => call("DELETE", path, { bearer: token.get() }),
};

// The product API as one sandbox: reads with its restricted key, writes with its secret key.
export function sandboxClient(sandbox) {
  return {
    get: (path) => call("GET", path, { bearer: sandbox.restricted_key || sandbox.secret_key }),
    post: (path, body = {}) => call("POST", path, { bearer: sandbox.secret_key, body, idempotent: true }),
  };
}

// Follows a list's cursors: at most `pagesMax` pages of `limit`.
export async function pages(get, path, { limit = 100, pagesMax = 10 } = {}) {
  const sep = path.includes("?") ? "&" : "?";
  let data = [];
  let cursor = null;
  for (let i = 0; i < pagesMax; i++) {
    const page = await get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    data = data.concat(page.data);
    cursor = page.next_cursor;
    if (!cursor) return { data, complete: true };
  }
  return { data, complete: false };
}
