// Hand-written ESM entry: the same objects as the CommonJS one.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const twh = require('./index.js')

export const {
  Client, Emulator, webhooks, VERSION, TwhError, AuthenticationError, PermissionError, NotFoundError,
  ConflictError, IdempotencyKeyReusedError, ValidationError, PreconditionFailedError,
  PreconditionRequiredError, RateLimitedError, QuotaExceededError, ServerError, ApiError,
  ConnectionError, TimeoutError, UnexpectedResponseError, InvalidRequestError,
  ConfigurationError, WebhookVerificationError,
} = twh
export default twh
