'use strict'
// Hand-written. The native layer throws `Error("TWH_ERROR:{json}")`, the JSON being
// `twh::dispatch::error_details` (snake_case); `fromNative` turns that into the TwhError
// subclass of its `kind` (docs/guide/errors.md), keeping status, code, requestId, retryAfter and the
// answer's metadata (`lastResponse`); `message` is the problem's `detail`.

const { LastResponse } = require('./response.js')

const PREFIX = 'TWH_ERROR:'

class TwhError extends Error {
  constructor(message, details = {}) {
    super(message)
    this.name = new.target.name
    this.status = details.status ?? null
    this.code = details.code ?? null
    this.requestId = details.requestId ?? null
    /** Seconds the server asked to wait (Retry-After), or null. */
    this.retryAfter = details.retryAfter ?? null
    this.errors = details.errors ?? []
    this.attempts = details.attempts ?? 0
    this.currentEtag = details.currentEtag ?? null
    /** The answer's metadata (status, headers, requestId, rateLimit), or null without an answer. */
    Object.defineProperty(this, 'lastResponse', {
      value: details.headers != null ? new LastResponse(details.status, details.headers) : null,
      configurable: true,
    })
  }
}

/** The one table: each error kind of the Rust SDK (`twh::ErrorKind::as_str`) and its class. */
const KINDS = {
  authentication: 'AuthenticationError',
  permission: 'PermissionError',
  not_found: 'NotFoundError',
  conflict: 'ConflictError',
  idempotency_key_reused: 'IdempotencyKeyReusedError',
  validation: 'ValidationError',
  precondition_failed: 'PreconditionFailedError',
  precondition_required: 'PreconditionRequiredError',
  rate_limited: 'RateLimitedError',
  quota_exceeded: 'QuotaExceededError',
  server: 'ServerError',
  api: 'ApiError',
  connection: 'ConnectionError',
  timeout: 'TimeoutError',
  unexpected_response: 'UnexpectedResponseError',
  invalid_request: 'InvalidRequestError',
  configuration: 'ConfigurationError',
  webhook_verification: 'WebhookVerificationError',
}
const classes = { TwhError }
const byKind = {}
for (const [kind, name] of Object.entries(KINDS)) {
  // A named class per kind, so `instanceof` and `err.name` both work.
  classes[name] = byKind[kind] = { [name]: class extends TwhError {} }[name]
}

function fromNative(err) {
  if (!(err instanceof Error) || typeof err.message !== 'string' || !err.message.startsWith(PREFIX)) {
    return err
  }
  let d
  try {
    d = JSON.parse(err.message.slice(PREFIX.length))
  } catch {
    return err
  }
  const Class = (Object.hasOwn(byKind, d.kind) && byKind[d.kind]) || TwhError
  return new Class(d.message, {
    status: d.status,
    code: d.code,
    requestId: d.request_id,
    retryAfter: d.retry_after,
    errors: d.errors,
    attempts: d.attempts,
    currentEtag: d.current_etag,
    headers: d.headers,
  })
}

/** Calls `fn` and rethrows native errors as TwhError subclasses (async and sync). */
function wrap(fn) {
  try {
    const result = fn()
    if (result && typeof result.then === 'function') {
      return result.catch((e) => { throw fromNative(e) })
    }
    return result
  } catch (e) {
    throw fromNative(e)
  }
}

module.exports = { ...classes, fromNative, wrap }
