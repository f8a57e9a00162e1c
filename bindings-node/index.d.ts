// Hand-written public types. The generated types of the native layer are in binding.d.ts.
// Values are the API's JSON with camelCase keys; resources carry their `etag`.

export interface ClientOptions {
  apiKey?: string
  baseUrl?: string
  timeoutMs?: number
  maxRetries?: number
  userAgentSuffix?: string
}
export interface PostOptions { idempotencyKey?: string; ifMatch?: string }
export interface Page<T> { data: T[]; nextCursor: string | null }
export type Resource = { id: string; etag: string; [key: string]: any }
export interface Item extends Resource { sku: string; name: string }
export interface Location extends Resource { code: string; name: string }
export interface MovementLine { itemId: string; locationId: string; delta: number; quantityAfter: number; [key: string]: any }
export interface Movement extends Resource { type: MovementType; lines: MovementLine[] }
export interface StockLevel { itemId: string; locationId: string; quantity: number; etag: string; [key: string]: any }
export interface Event extends Resource { type: string; data: any }
export type MovementType = 'receipt' | 'shipment' | 'adjustment' | 'transfer'
export interface CreateItem { sku: string; name: string; [key: string]: any }
export interface CreateLocation { code: string; name: string; [key: string]: any }
export interface CreateMovement {
  type: MovementType; itemId: string; quantity: number
  locationId?: string; fromLocationId?: string; toLocationId?: string
  reference?: string; reason?: string; allowNegative?: boolean; metadata?: Record<string, unknown>
}
export interface ListQuery { limit?: number; cursor?: string }
export interface ItemQuery extends ListQuery { sku?: string; q?: string; status?: 'active' | 'archived' }
export interface LocationQuery extends ListQuery { code?: string; q?: string; status?: 'active' | 'archived'; kind?: string }
export interface MovementQuery extends ListQuery { itemId?: string; locationId?: string; type?: MovementType; afterSequence?: number; createdAfter?: string; createdBefore?: string }
export interface StockLevelQuery extends ListQuery { itemId?: string; locationId?: string; belowThreshold?: boolean }
export interface EventQuery extends ListQuery { type?: string; after?: string }

export declare class Client {
  constructor(options?: ClientOptions)
  readonly baseUrl: string
  getSandbox(): Promise<any>
  resetSandbox(options?: PostOptions): Promise<any>
  deleteSandbox(): Promise<void>
  createItem(item: CreateItem, options?: PostOptions): Promise<Item>
  getItem(id: string): Promise<Item>
  updateItem(id: string, etag: string, patch: Partial<CreateItem>): Promise<Item>
  updateItemWith(id: string, change: (current: Item) => Partial<CreateItem> | Promise<Partial<CreateItem>>): Promise<Item>
  archiveItem(id: string, etag: string): Promise<Item>
  listItems(query?: ItemQuery): Promise<Page<Item>>
  iterItems(query?: ItemQuery): AsyncGenerator<Item, void, undefined>
  createLocation(location: CreateLocation, options?: PostOptions): Promise<Location>
  getLocation(id: string): Promise<Location>
  updateLocation(id: string, etag: string, patch: Partial<CreateLocation>): Promise<Location>
  updateLocationWith(id: string, change: (current: Location) => Partial<CreateLocation> | Promise<Partial<CreateLocation>>): Promise<Location>
  archiveLocation(id: string, etag: string): Promise<Location>
  listLocations(query?: LocationQuery): Promise<Page<Location>>
  iterLocations(query?: LocationQuery): AsyncGenerator<Location, void, undefined>
  createMovement(movement: CreateMovement, options?: PostOptions): Promise<Movement>
  createMovementBatch(movements: CreateMovement[], options?: PostOptions): Promise<Movement[]>
  reverseMovement(id: string, reverse?: { reason?: string; reference?: string }, options?: PostOptions): Promise<Movement>
  getMovement(id: string): Promise<Movement>
  listMovements(query?: MovementQuery): Promise<Page<Movement>>
  iterMovements(query?: MovementQuery): AsyncGenerator<Movement, void, undefined>
  getStockLevel(itemId: string, locationId: string): Promise<StockLevel>
  listStockLevels(query?: StockLevelQuery): Promise<Page<StockLevel>>
  iterStockLevels(query?: StockLevelQuery): AsyncGenerator<StockLevel, void, undefined>
  getEvent(id: string): Promise<Event>
  listEvents(query?: EventQuery): Promise<Page<Event>>
  iterEvents(query?: EventQuery): AsyncGenerator<Event, void, undefined>
}

export interface FaultSpec {
  action: 'error_before_commit' | 'error_after_commit' | 'delay' | 'drop_connection_after_commit'
  times: number; status?: number; delayMs?: number; method?: string; pathPrefix?: string
}

export declare class Emulator {
  static start(): Promise<Emulator>
  readonly baseUrl: string
  createSandbox(options?: Omit<ClientOptions, 'apiKey' | 'baseUrl'>): Client
  advanceClock(ms: number): Promise<string>
  injectFault(spec: FaultSpec): any
  clearFaults(): void
  stop(): Promise<void>
}

export declare const webhooks: {
  verify(payload: string | Buffer, headers: Record<string, string | string[]> | { entries(): Iterable<[string, string]> }, secret: string, options?: { toleranceMs?: number }): Event
}

export declare class TwhError extends Error {
  readonly status: number | null
  readonly code: string | null
  readonly requestId: string | null
  /** Seconds (Retry-After), or null. */
  readonly retryAfter: number | null
  readonly errors: { field: string; message: string }[]
  readonly attempts: number
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
