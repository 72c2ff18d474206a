/**
 * Setup shared by the integration tests: a local runtime with quiet logs, dev tokens, tracked WebSocket clients,
 * polling, and HTTP requests through the HTTP API stand-in. Each test file runs in its own module registry, so the
 * tracked clients here belong to one file.
 */
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll } from '@jest/globals';
import type { SignTokenInput } from '../../local/identity.ts';
import { type LocalOptions, type LocalRuntime, startLocal } from '../../local/runtime.ts';
import { devLimits } from '../../local/seed.ts';
import { connect, type Frame, type TestClient } from './ws-client.ts';

/**
 * How long a test file's `beforeAll` may take to start a local runtime: ~10-15 s on a quiet machine here (sandboxes
 * warmed one at a time, PGlite, seeding), several times that while other work shares the two cores.
 */
export const STARTUP_TIMEOUT_MS = 120_000;

/**
 * What a first connection and its frames need (handshake, $connect, $disconnect, $default, delivery): warm before a
 * test runtime is ready, as timed tests expect; the other functions start on first use (a file uses a few of them).
 */
export const WARM_IN_TESTS = ['authorizer', 'connect', 'disconnect', 'message', 'broadcaster'] as const;

/**
 * Starts the local runtime on a free port with runtime and function logs dropped, its seeded tenants with raised
 * limits (tests drive them far harder than a person would), and only the WebSocket path warmed (WARM_IN_TESTS);
 * `options` override any of that.
 */
export function startQuietRuntime(options: LocalOptions = {}): Promise<LocalRuntime> {
  return startLocal({
    port: 0,
    log: () => undefined,
    onFunctionLog: () => undefined,
    seedLimits: devLimits,
    warmFunctions: WARM_IN_TESTS,
    // ~2.5 s sooner per start (local/data-api.ts says why the benchmark and `npm start` keep them on disk).
    memoryDatabases: true,
    ...options,
  });
}

/** What a test file does around its runtime, in the same hooks that start and stop it. */
export interface RuntimeHooks {
  /** After the runtime started, in the same `beforeAll` (tenants and clients every test of the file uses). */
  readonly prepare?: (runtime: LocalRuntime) => Promise<void>;
  /** In the `afterAll`, before the tracked clients are closed and the runtime stopped. */
  readonly cleanup?: (runtime: LocalRuntime) => Promise<void> | void;
  /** How long the start (with `prepare`) and the stop (with `cleanup`) may each take. @default STARTUP_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/**
 * The usual test file setup: one quiet local runtime started before the file's tests and stopped (with every tracked
 * client closed) after them. Returns the runtime's getter (the runtime exists only once `beforeAll` ran). `hooks`
 * (or a timeout alone) add what the file does once around it.
 */
export function useQuietRuntime(options: LocalOptions = {}, hooks: RuntimeHooks | number = {}): () => LocalRuntime {
  const { prepare, cleanup, timeoutMs = STARTUP_TIMEOUT_MS } = typeof hooks === 'number' ? { timeoutMs: hooks } : hooks;
  let runtime: LocalRuntime | undefined;
  let starting: Promise<LocalRuntime> | undefined;
  beforeAll(async () => {
    starting = startQuietRuntime(options);
    runtime = await starting;
    await prepare?.(runtime);
  }, timeoutMs);
  afterAll(async () => {
    if (runtime !== undefined) await cleanup?.(runtime);
    await closeClients();
    // A start that outlived its hook's timeout still finishes: stop that runtime too, or it keeps Jest alive.
    await (runtime ?? (await starting?.catch(() => undefined)))?.stop();
  }, timeoutMs);
  return () => {
    if (runtime === undefined) throw new Error('the local runtime is not started yet (use it inside a test)');
    return runtime;
  };
}

/** A dev-identity token for `userId` of `tenantId`; `extra` adds the other SignTokenInput fields (ttl, claims...). */
export function tokenFor(
  runtime: LocalRuntime,
  tenantId: string,
  userId: string,
  roles: readonly string[],
  extra: Omit<SignTokenInput, 'tenantId' | 'userId' | 'roles'> = {},
): string {
  return runtime.identity.signToken({ tenantId, userId, roles, ...extra }).token;
}

const tracked: TestClient[] = [];

/** Opens a WebSocket client on the runtime's gateway and tracks it for `closeClients`. */
export async function openClient(
  runtime: LocalRuntime,
  token: string | undefined,
  how: 'subprotocol' | 'query' = 'subprotocol',
): Promise<TestClient> {
  const c = await connect(runtime.wsUrl, token, how);
  tracked.push(c);
  return c;
}

/** Closes every client `openClient` opened (and any `track`ed) so far. */
export async function closeClients(): Promise<void> {
  await Promise.all(tracked.splice(0).map((c) => c.close()));
}

/** Tracks a client opened some other way, so `closeClients` closes it too. */
export function track(c: TestClient): TestClient {
  tracked.push(c);
  return c;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it holds; throws when it still does not after `timeoutMs`. */
/** Messages a queue of the runtime holds, visible or in flight (a DLQ's depth, for what was set aside). */
export async function queueDepth(runtime: LocalRuntime, url: string): Promise<number> {
  const out = await runtime.sqs.client.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const attributes = out.Attributes ?? {};
  return (
    Number(attributes.ApproximateNumberOfMessages ?? 0) + Number(attributes.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

export async function eventually(check: () => boolean, timeoutMs = 8000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** The raw response body. */
  readonly text: string;
}

/**
 * An HTTP request to the runtime: `token` (if any) as a Bearer authorization, `body` sent as is when a string and
 * as JSON otherwise (with a JSON content type), `headers` last so they can override both.
 */
export async function httpApi(
  runtime: LocalRuntime,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A JSON answer body; an empty body is `{}`. */
export function jsonOf<T = Record<string, unknown>>(answer: HttpAnswer): T {
  return (answer.text === '' ? {} : JSON.parse(answer.text)) as T;
}

/** Every message a client got in `group`, in arrival order, batch frames unpacked. */
export function messages(c: TestClient, group: string): Frame[] {
  return c.frames
    .flatMap((f) => (f.type === 'batch' ? (f.messages as Frame[]) : f.type === 'message' ? [f] : []))
    .filter((m) => m.group === group);
}
