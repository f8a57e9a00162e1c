// Hand-written types of `twh/testing` (testing.js): hermetic tests with node:test.
import type { ClockState, Fault, FaultSpec, SandboxCreated } from './lib/operations.js'
import type { Client, Emulator, EmulatorOptions, JournalEntry, RequestsOptions, SandboxOptions } from './index.js'

/** One test's sandbox; `clock`, `advanceClock`, `injectFault` and `requests` concern it alone. */
export interface TestSandbox {
  client: Client
  sandbox: SandboxCreated
  /** `sbx_…` */
  id: string
  /** This process's shared emulator. */
  emulator: Emulator
  clock(): Promise<ClockState>
  /** Moves this sandbox's clock only; resolves to its new time (RFC 3339). */
  advanceClock(ms: number): Promise<string>
  /** Arms a fault that matches this sandbox's requests only. */
  injectFault(spec: FaultSpec): Fault
  /** A page of the request journal, this sandbox's requests only. */
  requests(options?: Omit<RequestsOptions, 'sandbox'>): Promise<{ data: JournalEntry[]; nextCursor: string | null }>
}

/** This process's emulator, started on first use (options apply to that first start only). */
export declare function emulator(options?: EmulatorOptions): Promise<Emulator>
/** A fresh sandbox of this process's emulator, for one test. */
export declare function sandbox(options?: SandboxOptions): Promise<TestSandbox>
