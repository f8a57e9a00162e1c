// Hand-written public types of the package `twh`: behaviour only (configuration, the Client's
// helpers, the emulator, webhooks, errors). The API's types and the Client's operation methods
// are generated from openapi/openapi.json into lib/operations.d.ts and re-exported here; the
// native layer's own types (binding.d.ts) are not. test/api.test.js checks that every method of
// the runtime `Client` and `Emulator` is declared, and nothing more.

import type {
  ClockState, CreateJobOptions, CreateSandbox, Event, Fault, FaultSpec, Fixtures, Item, Job, JournalEntry, JournalPage,
  LastResponse, Location, SandboxCreated, SinkEntry, UpdateItem, UpdateLocation, Versioned,
} from './lib/operations.js'
import { Operations } from './lib/operations.js'

export * from './lib/operations.js'

/** The package version. */
export declare const VERSION: string

// ------------------------------------------------------------------------------------------
// Configuration and options

export interface ClientOptions {
  /** Default: env `TWH_API_KEY`. Required (a missing key throws ConfigurationError at construction). */
  apiKey?: string
  /** Default: env `TWH_BASE_URL`, else `http://127.0.0.1:4010`. */
  baseUrl?: string
  /** Timeout of each attempt (default 30 000, at most 600 000). */
  timeoutMs?: number
  /** Retries after the first attempt (default 3, at most 10; 0 turns retries off). */
  maxRetries?: number
  /** Appended to `User-Agent: twh-node/<version>` after a space. */
  userAgentSuffix?: string
  /** Receives one debug line per attempt (default: `console` when env `TWH_LOG=debug`, else none). */
  logger?: { debug(message: string): void }
}

/** One attempt of a call, as `client.on('request' | 'response', …)` listeners receive it. */
export interface Attempt {
  method: string
  url: string
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt: number
  requestId: string | null
  idempotencyKey: string | null
  /** After the attempt: its status (null before, or when no answer came). */
  status: number | null
  /** After the attempt: how long it took. */
  elapsedMs: number | null
}

/** Settings of `Client.withOptions`. */
export interface RequestOptions {
  /** Timeout of each attempt (at most 600 000). */
  timeoutMs?: number
  /** Retries after the first attempt (at most 10). */
  maxRetries?: number
  /** Headers added to every request. */
  headers?: Record<string, string>
}

// ------------------------------------------------------------------------------------------
// Client

/**
 * A TWH API client. Its operation methods (one per SDK method of the API document, with their
 * option and result types) are generated: see `lib/operations.d.ts`. Declared here: behaviour.
 */
export declare class Client extends Operations {
  constructor(options?: ClientOptions)
  readonly baseUrl: string
  /** The same configuration with another API key (after `rollApiKey`, or a restricted key). */
  withApiKey(apiKey: string): Client
  /** A client sharing this one's connections and key, differing only in these settings. */
  withOptions(options: RequestOptions): Client
  /** Calls `listener` before (`'request'`) or after (`'response'`) every attempt of every call. */
  on(event: 'request' | 'response', listener: (attempt: Attempt) => void): this
  /**
   * Reads the item, applies `change`, writes the patch it returns with If-Match; on 412 reads
   * and re-applies (at most 10 times), then throws the PreconditionFailedError.
   */
  updateItemWith(id: string, change: (current: Versioned<Item>) => UpdateItem | Promise<UpdateItem>): Promise<Versioned<Item>>
  /** `updateItemWith` for locations. */
  updateLocationWith(id: string, change: (current: Versioned<Location>) => UpdateLocation | Promise<UpdateLocation>): Promise<Versioned<Location>>
  /** Imports movements from CSV in the background (each row's `reference` makes it idempotent): `createJob` of an `import_movements` job. */
  importMovementsCsv(csv: string, options?: CreateJobOptions): Promise<Job>
}

// ------------------------------------------------------------------------------------------
// Emulator

export interface EmulatorOptions {
  /** Port on 127.0.0.1 (default: any free port). */
  port?: number
  /** Requests per second per API key (0: no rate limit; default 1000). */
  rateLimitPerSecond?: number
  /** Burst per API key (default 2000). */
  rateLimitBurst?: number
  /** Default webhook retry delays in seconds. */
  webhookRetryScheduleSeconds?: number[]
  /** Timeout of one webhook attempt (default 15 000). */
  webhookTimeoutMs?: number
  /** Grace period of a rolled secret key, in emulator seconds (default 86 400). */
  keyGraceSeconds?: number
  /** Lifetime of idempotency records, in emulator seconds (default 86 400). */
  idempotencyTtlSeconds?: number
  /** Hard monthly quotas of the `free` plan. */
  freeQuotas?: { apiRequests?: number; ledgerLines?: number; webhookAttempts?: number }
  /** Keep the state in this directory and recover it on the next start (default: in memory). */
  dataDir?: string
  /**
   * Deterministic mode (`twh-emulator serve --deterministic SEED`): ids, keys, webhook secrets
   * and request ids come from a generator seeded by this, and the clock starts at
   * 2030-01-01T00:00:00Z and moves only when advanced.
   */
  deterministic?: number
  /** Most requests the request journal keeps (`twh-emulator serve --journal-size`; default 10 000); 0 turns it off. */
  journalSize?: number
}
/** A sandbox (`name`, `seed`, `plan`) and the options of its client. */
export interface SandboxOptions extends CreateSandbox, Omit<ClientOptions, 'apiKey' | 'baseUrl'> {}

/** Which sandbox a call is about: its id (`sbx_…`), its details (`{ id }`), or a Client of it. */
export type SandboxRef = string | { id: string } | Client

/** A fault to arm; `sandbox` (an id or `{ id }`) limits it to that sandbox's requests. */
export interface InjectFault extends FaultSpec {
  sandbox?: string | { id: string }
}

/** The filters and page of `Emulator.requests`. */
export interface RequestsOptions {
  /** Only requests authenticated to this sandbox. */
  sandbox?: SandboxRef
  /** Only this method (`POST`). */
  method?: string
  /** Only paths starting with this. */
  pathPrefix?: string
  /** Only answers with this status. */
  status?: number
  /** Only the attempts of one call (its `X-Request-Id`). */
  requestId?: string
  /** Only requests with this `Idempotency-Key`. */
  idempotencyKey?: string
  /** Page size (1..=100, default 20). */
  limit?: number
  /** `nextCursor` of the previous page. */
  cursor?: string
}

export declare class Emulator {
  static start(options?: EmulatorOptions): Promise<Emulator>
  /** The handle of an emulator another process serves (its `stop()` only closes the handle). */
  static connect(baseUrl: string, options?: { adminToken?: string }): Promise<Emulator>
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string
  /** Whether this handle was made by `Emulator.connect`. */
  readonly connected: boolean
  /** A new sandbox (default: empty, free) and a ready Client with its secret key. */
  createSandbox(options?: SandboxOptions): Client
  /** The same, with the sandbox's details and both keys. */
  createSandboxWith(options?: SandboxOptions): { client: Client; sandbox: SandboxCreated }
  /** The emulator clock, or one sandbox's. */
  clock(options?: { sandbox?: SandboxRef }): Promise<ClockState>
  /** Moves the clock (one sandbox's with `{ sandbox }`, else every sandbox's); resolves to the new time (RFC 3339). */
  advanceClock(ms: number, options?: { sandbox?: SandboxRef }): Promise<string>
  injectFault(spec: InjectFault): Fault
  /** The armed faults, with the times each has left. */
  faults(): Promise<Fault[]>
  clearFaults(): void
  /** What the built-in webhook sink `name` received, oldest first. */
  sink(name: string): Promise<SinkEntry[]>
  clearSink(name: string): Promise<void>
  /** One page of the request journal, oldest first. */
  requests(options?: RequestsOptions): Promise<JournalPage>
  /** Every entry of `requests(options)`, page after page. */
  requestsIter(options?: RequestsOptions): AsyncIterableIterator<JournalEntry>
  /** One journal entry by its id. */
  request(id: string): Promise<JournalEntry>
  clearRequests(): Promise<void>
  /** Creates the sandboxes of a fixtures document (as `serve --fixtures` reads it), all or nothing. */
  loadFixtures(document: Fixtures): Promise<{ client: Client; sandbox: SandboxCreated }[]>
  /** Stops serving; idempotent; leaves nothing that keeps the process alive. A connected handle is only closed. */
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

// ------------------------------------------------------------------------------------------
// Webhooks

export type WebhookHeaders =
  | Record<string, string | string[] | undefined>
  | { entries(): Iterable<[string, string]> }
export type SignedHeaders = { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string }

export declare const webhooks: {
  /** Checks a Standard Webhooks delivery (any `v1,` signature, timestamp within tolerance, default 5 min) and returns its event. */
  verify(payload: string | Buffer, headers: WebhookHeaders, secret: string, options?: { toleranceMs?: number }): Event
  /** Signs a delivery as TWH does (one signature per secret), for tests of a webhook handler. */
  sign(secrets: string | string[], id: string, timestamp: number | Date, payload: string | Buffer): SignedHeaders
}

// ------------------------------------------------------------------------------------------
// Errors (docs/guide/errors.md)

export declare class TwhError extends Error {
  /** HTTP status, or null (connection, timeout, configuration). */
  readonly status: number | null
  /** The API's stable snake_case code (`sku_taken`, …), or null. */
  readonly code: string | null
  /** The `X-Request-Id` of the last attempt, or null. */
  readonly requestId: string | null
  /** Seconds the server asked to wait (Retry-After), or null. */
  readonly retryAfter: number | null
  /** Field problems of a 400/422. */
  readonly errors: { field: string; message: string }[]
  /** Attempts made (1 + retries). */
  readonly attempts: number
  /** On a 412: the resource's current ETag. */
  readonly currentEtag: string | null
  /** The answer's metadata, or null when there was no answer. */
  readonly lastResponse: LastResponse | null
}
export declare class AuthenticationError extends TwhError {}
export declare class PermissionError extends TwhError {}
export declare class NotFoundError extends TwhError {}
export declare class ConflictError extends TwhError {}
export declare class IdempotencyKeyReusedError extends TwhError {}
export declare class ValidationError extends TwhError {}
export declare class PreconditionFailedError extends TwhError {}
export declare class PreconditionRequiredError extends TwhError {}
export declare class RateLimitedError extends TwhError {}
export declare class QuotaExceededError extends TwhError {}
export declare class ServerError extends TwhError {}
export declare class ApiError extends TwhError {}
export declare class ConnectionError extends TwhError {}
export declare class TimeoutError extends TwhError {}
export declare class UnexpectedResponseError extends TwhError {}
export declare class InvalidRequestError extends TwhError {}
export declare class ConfigurationError extends TwhError {}
export declare class WebhookVerificationError extends TwhError {}
