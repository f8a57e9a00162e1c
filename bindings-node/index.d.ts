// Hand-written public types of the package `twh` (the generated types of the native layer are
// in binding.d.ts, which this file does not re-export). Values are the API's JSON with camelCase
// keys (keys inside `metadata`, `attributes` and per-meter maps are left as they are); single
// resources carry their `etag`. test/api.test.js checks that every method of the runtime
// `Client` and `Emulator` is declared here, and nothing more.

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
}
/** Options of every POST. */
export interface PostOptions {
  /** Sent as `Idempotency-Key` on every attempt of this call (default: a UUIDv4 per call). */
  idempotencyKey?: string
}
/** Options of `createMovement`. */
export interface MovementOptions extends PostOptions {
  /** The ETag of the stock level this movement changes: stale → PreconditionFailedError, nothing written. */
  ifMatch?: string
}
export interface Page<T> { data: T[]; nextCursor: string | null }
export interface ListQuery {
  /** Page size, 1..=100 (default 20). */
  limit?: number
  /** A `nextCursor` to start from. */
  cursor?: string
}
export type Timestamp = string | Date

// ------------------------------------------------------------------------------------------
// Resources

export type Plan = 'free' | 'pro'
export type Status = 'active' | 'archived'
export type LocationKind = 'warehouse' | 'store' | 'virtual'
export type MovementType = 'receipt' | 'shipment' | 'adjustment' | 'transfer'
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'dead'
export type FaultAction = 'error_before_commit' | 'error_after_commit' | 'delay' | 'drop_connection_after_commit'

export interface Sandbox { id: string; name: string; plan: Plan; createdAt: string }
export interface SandboxCreated extends Sandbox {
  /** `sk_test_…`: may do everything in the sandbox. */
  secretKey: string
  /** `rk_test_…`: may only read. */
  restrictedKey: string
}
export interface ApiKeyRolled { secretKey: string; previousKeyExpiresAt: string }
export interface CreateSandbox { name?: string; seed?: 'empty' | 'demo'; plan?: Plan }

export interface Item {
  id: string; sku: string; name: string; unit: string; attributes: Record<string, unknown>
  lowStockThreshold?: number; status: Status; version: number; createdAt: string; updatedAt: string
  etag: string
}
export interface CreateItem { sku: string; name: string; unit?: string; attributes?: Record<string, unknown>; lowStockThreshold?: number }
export type UpdateItem = Partial<CreateItem>

export interface Location {
  id: string; code: string; name: string; kind: LocationKind; status: Status; version: number
  createdAt: string; updatedAt: string; etag: string
}
export interface CreateLocation { code: string; name: string; kind?: LocationKind }
export type UpdateLocation = Partial<CreateLocation>

export interface MovementLine { locationId: string; delta: number; quantityAfter: number }
export interface Movement {
  id: string; sequence: number; type: MovementType; itemId: string; lines: MovementLine[]
  reference?: string; reason?: string; metadata?: Record<string, unknown>; reverses?: string; createdAt: string
}
/** A movement as answered to a single write or read: with the ETag of the (first) stock level it changed. */
export interface VersionedMovement extends Movement { etag: string }
export interface CreateMovement {
  type: MovementType; itemId: string; quantity: number
  locationId?: string; fromLocationId?: string; toLocationId?: string
  reference?: string; reason?: string; allowNegative?: boolean; metadata?: Record<string, unknown>
}
export interface ReverseMovement { reason?: string; allowNegative?: boolean }

export interface StockLevel {
  itemId: string; locationId: string; quantity: number; version: number
  lastMovementId?: string; updatedAt?: string
}
export interface VersionedStockLevel extends StockLevel { etag: string }

export interface Event<D = any> { id: string; type: string; createdAt: string; data: D }

export interface WebhookEndpoint {
  id: string; url: string; eventTypes: string[]; description?: string; enabled: boolean
  /** `whsec_…`, for `webhooks.verify`. */
  secret: string
  retryScheduleSeconds?: number[]; version: number; createdAt: string; updatedAt: string
}
export interface VersionedWebhookEndpoint extends WebhookEndpoint { etag: string }
export interface CreateWebhookEndpoint {
  url: string; eventTypes: string[]; description?: string
  /** Retry delays in seconds for this endpoint (default: the emulator's schedule). */
  retryScheduleSeconds?: number[]
}
export interface UpdateWebhookEndpoint {
  url?: string; eventTypes?: string[]; description?: string; enabled?: boolean; retryScheduleSeconds?: number[]
}
export interface DeliveryAttempt { at: string; statusCode?: number; durationMs: number; error?: string }
export interface WebhookDelivery {
  id: string; endpointId: string; eventId: string; eventType: string; status: DeliveryStatus
  nextAttemptAt?: string; attempts: DeliveryAttempt[]; createdAt: string
}
export interface ReplayDeliveries { status?: 'dead'; since?: Timestamp; until?: Timestamp }
export interface ReplayCount { count: number }

export type Meter = 'api_requests' | 'ledger_lines' | 'webhook_attempts'
/** Keyed by meter name (the keys are not camelCased). */
export interface PerMeter { api_requests: number; ledger_lines: number; webhook_attempts: number }
export interface PlanInfo {
  id: Plan; name: string; currency: string; baseAmount: number; hardQuotas: boolean
  quotas: PerMeter; overageUnitAmount: PerMeter
}
export interface Subscription { plan: Plan; periodStart: string; periodEnd: string }
export interface MeterUsage { meter: Meter; quantity: number; quota: number; hard: boolean }
export interface UsageReport { period: string; periodStart: string; periodEnd: string; plan: Plan; meters: MeterUsage[] }
export interface UsageExport { period: string; periodStart: string; periodEnd: string; data: Record<string, any>[] }
export interface InvoiceLine { meter: Meter; quantity: number; included: number; overage: number; unitAmount: number; amount: number }
export interface Invoice {
  id: string; period: string; periodStart: string; periodEnd: string; plan: Plan; currency: string
  baseAmount: number; lines: InvoiceLine[]; subtotal: number; total: number; status: 'issued'; createdAt: string
}
export interface Discrepancy { itemId: string; locationId: string; snapshotQuantity: number; ledgerQuantity: number; difference: number }
export interface Reconciliation {
  id: string; status: 'running' | 'completed'; trigger: 'manual' | 'nightly'; locationId?: string
  checked: number; discrepancyCount: number; discrepancies: Discrepancy[]; createdAt: string; completedAt?: string
}
export interface CreateReconciliation { locationId?: string }
export type JobStatus = 'queued' | 'running' | 'completed' | 'completed_with_errors' | 'failed'
export interface Job {
  id: string; type: 'import_movements'; format: 'csv'; status: JobStatus
  progress: { processed: number; total: number }; created: number; skipped: number
  errors: { line: number; message: string }[]; errorCount: number; createdAt: string; completedAt?: string
}
export interface CreateJob { type: 'import_movements'; format: 'csv'; data: string }
export interface PeriodOptions { period?: 'current' | string }

// ------------------------------------------------------------------------------------------
// Queries

export interface ItemQuery extends ListQuery { sku?: string; q?: string; status?: Status }
export interface LocationQuery extends ListQuery { code?: string; q?: string; status?: Status; kind?: LocationKind }
export interface MovementQuery extends ListQuery {
  itemId?: string; locationId?: string; type?: MovementType; afterSequence?: number
  createdAfter?: Timestamp; createdBefore?: Timestamp
}
export interface StockLevelQuery extends ListQuery { itemId?: string; locationId?: string; belowThreshold?: boolean }
export interface EventQuery extends ListQuery { type?: string; after?: string }
export type WebhookEndpointQuery = ListQuery
export interface WebhookDeliveryQuery extends ListQuery { endpointId?: string; eventId?: string; status?: DeliveryStatus }
export interface StockLevelOptions { asOf?: Timestamp }

// ------------------------------------------------------------------------------------------
// Client

export declare class Client {
  constructor(options?: ClientOptions)
  readonly baseUrl: string
  withApiKey(apiKey: string): Client

  // sandboxes and keys
  getSandbox(): Promise<Sandbox>
  resetSandbox(options?: PostOptions): Promise<Sandbox>
  deleteSandbox(): Promise<void>
  rollApiKey(options?: PostOptions): Promise<ApiKeyRolled>
  createSandbox(sandbox?: CreateSandbox, options?: PostOptions): Promise<SandboxCreated>

  // items
  createItem(item: CreateItem, options?: PostOptions): Promise<Item>
  getItem(id: string): Promise<Item>
  /** The item, or null when it still has `etag` (304). */
  getItemIfChanged(id: string, etag: string): Promise<Item | null>
  updateItem(id: string, etag: string, patch: UpdateItem): Promise<Item>
  updateItemWith(id: string, change: (current: Item) => UpdateItem | Promise<UpdateItem>): Promise<Item>
  archiveItem(id: string, etag: string): Promise<Item>
  listItems(query?: ItemQuery): Promise<Page<Item>>
  iterItems(query?: ItemQuery): AsyncGenerator<Item, void, undefined>

  // locations
  createLocation(location: CreateLocation, options?: PostOptions): Promise<Location>
  getLocation(id: string): Promise<Location>
  getLocationIfChanged(id: string, etag: string): Promise<Location | null>
  updateLocation(id: string, etag: string, patch: UpdateLocation): Promise<Location>
  updateLocationWith(id: string, change: (current: Location) => UpdateLocation | Promise<UpdateLocation>): Promise<Location>
  archiveLocation(id: string, etag: string): Promise<Location>
  listLocations(query?: LocationQuery): Promise<Page<Location>>
  iterLocations(query?: LocationQuery): AsyncGenerator<Location, void, undefined>

  // movements
  createMovement(movement: CreateMovement, options?: MovementOptions): Promise<VersionedMovement>
  /** 1..=1000 movements, all or nothing. */
  createMovementBatch(movements: CreateMovement[], options?: PostOptions): Promise<Movement[]>
  reverseMovement(id: string, reverse?: ReverseMovement, options?: PostOptions): Promise<VersionedMovement>
  getMovement(id: string): Promise<VersionedMovement>
  listMovements(query?: MovementQuery): Promise<Page<Movement>>
  iterMovements(query?: MovementQuery): AsyncGenerator<Movement, void, undefined>

  // stock levels
  getStockLevel(itemId: string, locationId: string, options?: StockLevelOptions): Promise<VersionedStockLevel>
  getStockLevelIfChanged(itemId: string, locationId: string, etag: string): Promise<VersionedStockLevel | null>
  listStockLevels(query?: StockLevelQuery): Promise<Page<StockLevel>>
  iterStockLevels(query?: StockLevelQuery): AsyncGenerator<StockLevel, void, undefined>

  // events
  getEvent(id: string): Promise<Event & { etag: string }>
  listEvents(query?: EventQuery): Promise<Page<Event>>
  iterEvents(query?: EventQuery): AsyncGenerator<Event, void, undefined>

  // webhook endpoints and deliveries
  createWebhookEndpoint(endpoint: CreateWebhookEndpoint, options?: PostOptions): Promise<VersionedWebhookEndpoint>
  getWebhookEndpoint(id: string): Promise<VersionedWebhookEndpoint>
  updateWebhookEndpoint(id: string, etag: string, patch: UpdateWebhookEndpoint): Promise<VersionedWebhookEndpoint>
  deleteWebhookEndpoint(id: string, etag: string): Promise<void>
  /** A new signing secret; the old one also signs for 24 h. */
  rotateWebhookSecret(id: string, options?: PostOptions): Promise<VersionedWebhookEndpoint>
  /** Sends a `ping` event now. */
  testWebhookEndpoint(id: string, options?: PostOptions): Promise<WebhookDelivery>
  /** Re-queues the endpoint's dead deliveries (default `{ status: 'dead' }`). */
  replayWebhookEndpoint(id: string, replay?: ReplayDeliveries, options?: PostOptions): Promise<ReplayCount>
  listWebhookEndpoints(query?: WebhookEndpointQuery): Promise<Page<WebhookEndpoint>>
  iterWebhookEndpoints(query?: WebhookEndpointQuery): AsyncGenerator<WebhookEndpoint, void, undefined>
  getWebhookDelivery(id: string): Promise<WebhookDelivery>
  /** Sends a delivery again now. */
  replayWebhookDelivery(id: string, options?: PostOptions): Promise<WebhookDelivery>
  listWebhookDeliveries(query?: WebhookDeliveryQuery): Promise<Page<WebhookDelivery>>
  iterWebhookDeliveries(query?: WebhookDeliveryQuery): AsyncGenerator<WebhookDelivery, void, undefined>

  // billing
  listPlans(): Promise<PlanInfo[]>
  getSubscription(): Promise<Subscription>
  /** Changes the plan; its quotas apply at once. */
  updateSubscription(plan: Plan, options?: PostOptions): Promise<Subscription>
  getUsage(options?: PeriodOptions): Promise<UsageReport>
  exportUsage(options?: PeriodOptions): Promise<UsageExport>
  exportUsageCsv(options?: PeriodOptions): Promise<string>
  listInvoices(query?: ListQuery): Promise<Page<Invoice>>
  iterInvoices(query?: ListQuery): AsyncGenerator<Invoice, void, undefined>
  getInvoice(id: string): Promise<Invoice>
  getInvoiceCsv(id: string): Promise<string>

  // reconciliations and jobs
  createReconciliation(reconciliation?: CreateReconciliation, options?: PostOptions): Promise<Reconciliation>
  getReconciliation(id: string): Promise<Reconciliation>
  getReconciliationCsv(id: string): Promise<string>
  listReconciliations(query?: ListQuery): Promise<Page<Reconciliation>>
  iterReconciliations(query?: ListQuery): AsyncGenerator<Reconciliation, void, undefined>
  createJob(job: CreateJob, options?: PostOptions): Promise<Job>
  /** Imports movements from CSV in the background (each row's `reference` makes it idempotent). */
  importMovementsCsv(csv: string, options?: PostOptions): Promise<Job>
  getJob(id: string): Promise<Job>
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
}
export interface FaultSpec {
  action: FaultAction
  times: number; status?: number; delayMs?: number; method?: string; pathPrefix?: string
}
export interface Fault {
  id: string; action: FaultAction; status: number; delayMs: number; remaining: number; method?: string; pathPrefix?: string
}
export interface SandboxOptions extends CreateSandbox, Omit<ClientOptions, 'apiKey' | 'baseUrl'> {}

export declare class Emulator {
  static start(options?: EmulatorOptions): Promise<Emulator>
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string
  /** A new sandbox (default: empty, free) and a ready Client with its secret key. */
  createSandbox(options?: SandboxOptions): Client
  /** The same, with the sandbox's details and both keys. */
  createSandboxWith(options?: SandboxOptions): { client: Client; sandbox: SandboxCreated }
  /** Moves the emulator clock; resolves to the new emulator time (RFC 3339). */
  advanceClock(ms: number): Promise<string>
  injectFault(spec: FaultSpec): Fault
  clearFaults(): void
  /** Stops serving; idempotent; leaves nothing that keeps the process alive. */
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
// Errors (SDK.md "Errors")

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
