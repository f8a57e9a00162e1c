'use strict'
// Hand-written. The native layer throws `Error("TWH_ERROR:{json}")`; `fromNative` turns that
// into the TwhError subclass of SDK.md "Errors", keeping status, code, requestId, retryAfter.

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
  }
}

const names = [
  'AuthenticationError', 'PermissionError', 'NotFoundError', 'ConflictError',
  'IdempotencyKeyReusedError', 'ValidationError', 'PreconditionFailedError',
  'PreconditionRequiredError', 'RateLimitedError', 'QuotaExceededError', 'ServerError',
  'ApiError', 'ConnectionError', 'TimeoutError', 'UnexpectedResponseError',
  'InvalidRequestError', 'ConfigurationError', 'WebhookVerificationError',
]
const classes = { TwhError }
for (const name of names) {
  // A named class per kind, so `instanceof` and `err.name` both work.
  classes[name] = { [name]: class extends TwhError {} }[name]
}

function fromNative(err) {
  if (!(err instanceof Error) || typeof err.message !== 'string' || !err.message.startsWith(PREFIX)) {
    return err
  }
  let details
  try {
    details = JSON.parse(err.message.slice(PREFIX.length))
  } catch {
    return err
  }
  const Class = classes[details.kind] ?? TwhError
  return new Class(details.message, details)
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
