'use strict'
// Hand-written: the one path of every operation method (lib/operations.js, generated): checks
// the options object against the method's list, sends the call through the native `call`
// (twh::dispatch: retries, idempotency keys, typed errors) and reads the answer. The body
// crosses as JSON text (a `Date` becomes its RFC 3339 string); the answer comes back as JSON text
// with camelCase keys and is parsed once, so a field or enum value newer than this package is
// kept as it came.

const { fromNative, InvalidRequestError } = require('./errors.js')
const { LastResponse, attach } = require('./response.js')
const { NativeCancel, call: nativeCall } = require('../binding.js')

/** The native client of a `Client` (set by lib/client.js). */
const native = Symbol('native')

/** A native client's handle for the native `call`, made on its first call. */
const handle = Symbol('handle')
const handleOf = (nativeClient) => nativeClient[handle] ?? (nativeClient[handle] = nativeClient.handle())

/** RFC 3339 date-time, as the API reads it. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** The value of option `key` as the argument `[arg, type, minimum, maximum]` describes. */
function optionValue(method, key, [, type, minimum, maximum], value) {
  const refuse = (what) => new InvalidRequestError(`${method}: option ${key} must be ${what}, not ${JSON.stringify(value)}`)
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw refuse('a string')
      return value
    case 'boolean':
      if (typeof value !== 'boolean') throw refuse('a boolean')
      return value
    case 'integer':
      if (!Number.isSafeInteger(value) || (minimum != null && value < minimum) || (maximum != null && value > maximum)) {
        throw refuse(`an integer in ${minimum ?? ''}..=${maximum ?? ''}`)
      }
      return value
    case 'date-time':
      if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString()
      if (typeof value !== 'string' || !RFC3339.test(value)) throw refuse('a Date or an RFC 3339 date-time')
      return value
    default:
      return value
  }
}

/** Adds the options to `args` (dispatch names); an option the method does not have is refused. */
function addOptions(op, options, args) {
  const method = op.name
  if (typeof options !== 'object' || Array.isArray(options) || options instanceof Date) {
    throw new InvalidRequestError(`${method}: options must be an object`)
  }
  const known = op.options ?? {}
  for (const key of Object.keys(options)) {
    const value = options[key]
    if (value === undefined) continue
    const spec = Object.hasOwn(known, key) ? known[key] : undefined
    if (!spec) {
      throw new InvalidRequestError(`${method}: unknown option ${JSON.stringify(key)} (known: ${Object.keys(known).join(', ') || 'none'})`)
    }
    if (value !== null) args[spec[0]] = optionValue(method, key, spec, value)
  }
}

/**
 * Calls operation `op` (a row of lib/operations.js OPERATIONS) with its dispatch arguments, its
 * body (a value to send as JSON, or undefined) and the caller's options object.
 */
async function call(client, op, args, body, options) {
  let signal
  if (options != null && typeof options === 'object' && options.signal !== undefined) {
    ({ signal, ...options } = options)
    if (!(signal instanceof AbortSignal)) throw new InvalidRequestError(`${op.name}: option signal must be an AbortSignal`)
    signal.throwIfAborted()
  }
  if (options != null) addOptions(op, options, args)
  let answer
  try {
    const argsJson = JSON.stringify(args)
    const bodyJson = body === undefined ? undefined : JSON.stringify(body)
    answer = await (signal
      ? abortable(client[native], op.name, argsJson, bodyJson, signal)
      : nativeCall(handleOf(client[native]), op.name, argsJson, bodyJson))
  } catch (e) {
    throw fromNative(e)
  }
  // [head, body]: head is `{status} {etag}` and then the headers, one `name: value` line each.
  const head = answer[0]
  const status = (head.charCodeAt(0) - 48) * 100 + (head.charCodeAt(1) - 48) * 10 + head.charCodeAt(2) - 48
  if (status === 304) return null
  switch (op.answer) {
    case 'empty':
      return undefined
    case 'text':
      return answer[1]
  }
  const eol = head.indexOf('\n')
  const meta = new LastResponse(status, head.slice(eol + 1))
  if (op.answer === 'array') return attach(JSON.parse(answer[1]).data, meta)
  const value = JSON.parse(answer[1])
  if (op.etag && eol > 4) value.etag = head.slice(4, eol)
  return attach(value, meta)
}

/**
 * The native call, stopped when `signal` aborts: the promise rejects at once with the signal's
 * reason (an `AbortError` DOMException unless the caller gave another), and the native call is
 * dropped (`NativeCancel`): its request's connection is closed and no retry follows, so a write
 * the server had not yet committed is not made.
 */
function abortable(nativeClient, name, argsJson, bodyJson, signal) {
  const cancel = new NativeCancel()
  const pending = nativeClient.callCancellable(name, argsJson, bodyJson, cancel)
  return new Promise((resolve, reject) => {
    const onAbort = () => { cancel.cancel(); reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    pending.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v) },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e) },
    )
  })
}

/** Pages an iterator fetches at most, so a server that always answers a cursor cannot loop it forever. */
const ITER_PAGES_MAX = 1_000_000

/** Yields every item of `client[list](options)`, page after page, from `options.cursor` on. */
async function * pages(client, list, options) {
  if (options != null && (typeof options !== 'object' || Array.isArray(options))) {
    throw new InvalidRequestError(`${list}: options must be an object`)
  }
  let cursor = options?.cursor
  for (let n = 0; n < ITER_PAGES_MAX; n++) {
    const page = await client[list]({ ...options, cursor })
    yield * page.data
    if (!page.nextCursor) return
    cursor = page.nextCursor
  }
  throw new InvalidRequestError(`${list}: more than ${ITER_PAGES_MAX} pages`)
}

module.exports = { call, pages, native }
