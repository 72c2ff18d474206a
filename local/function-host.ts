/**
 * Runs the functions of the manifest locally, each in its own worker thread (its "sandbox") with exactly the
 * environment its bindings give it in AWS, so a function that reads a variable it was not bound to fails here as it
 * would there. Invocations are calls across the thread boundary with JSON-shaped events and results, like Lambda's.
 * A handler that runs past its timeout fails with `Task timed out` and its sandbox is replaced, as Lambda does.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { envKeysOf, type FunctionSpec, triggerEnvKeysOf } from '../lambdas/manifest.ts';
import { bundleFileOf } from './function-bundles.ts';

export interface FunctionHostOptions {
  readonly spec: FunctionSpec;
  /** Values for every environment key a binding can set, plus AWS_* endpoint/region/credential variables. */
  readonly bindingValues: Readonly<Record<string, string>>;
  /** Environment every function gets (region, endpoints, credentials, log level). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** Values of the keys this function's trigger sets (`triggerEnvKeysOf`: an SQS consumer's dead-letter queue). */
  readonly triggerValues?: Readonly<Record<string, string>>;
  readonly root: string;
  /** Where the function's stdout/stderr lines go (its CloudWatch log stream). @default process.stdout */
  readonly onLog?: (functionName: string, line: string) => void;
  /** Override the manifest's timeout (tests). */
  readonly timeoutMs?: number;
  /** Most sandboxes (concurrent invocations) of this function. @default `defaultMaxSandboxes()` */
  readonly maxSandboxes?: number;
  /**
   * A directory of prebuilt bundles (local/function-bundles.ts): the sandbox loads `<dir>/<name>.mjs` instead of the
   * TypeScript entry, a cold start a fraction as costly. @default none: the entry, through tsx
   */
  readonly bundleDir?: string;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One worker thread running the handler module; at most one invocation at a time. */
interface Sandbox {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  /** The invocation it is running. */
  pending: Pending | undefined;
  dead: boolean;
}

/**
 * Sandboxes per function unless told otherwise: one per core, at least 2 (8 on an 8-core laptop). Lambda would start a
 * sandbox per concurrent invocation, but here every sandbox shares the machine's cores: more of them than cores only
 * add cold starts and threads contending for the same CPU. Measured on 2 cores: the 2,000-member test used 62 s of CPU
 * with 8 sandboxes per function and 44 s with 2, and the whole test suite 543 s against 458 s.
 */
export function defaultMaxSandboxes(): number {
  return Math.max(2, availableParallelism());
}

export class FunctionError extends Error {
  constructor(name: string, message: string, stack?: string) {
    super(message);
    this.name = name;
    if (stack) this.stack = stack;
  }
}

export class FunctionHost {
  readonly name: string;
  invocations = 0;
  errors = 0;
  /** Sum of invocation durations, and of durations rounded up to Lambda's 1 ms billing granularity. */
  durationMs = 0;
  billedDurationMs = 0;
  /** Sandboxes started over the host's life (cold starts). */
  coldStarts = 0;
  /** When the latest invocation ended (ms since the epoch, sub-millisecond); NaN before the first. */
  lastEndedAt = Number.NaN;
  private readonly sandboxes = new Set<Sandbox>();
  private readonly idle: Sandbox[] = [];
  /** Invocations waiting for a sandbox, in arrival order. */
  private readonly queue: { resolve: (sandbox: Sandbox) => void; reject: (err: Error) => void }[] = [];
  /** A sandbox is starting (cold starts happen one at a time). */
  private starting = false;
  private nextId = 0;
  private closed = false;
  private readonly timeoutMs: number;
  /** Most sandboxes this function runs at once (its concurrency). */
  readonly maxSandboxes: number;

  constructor(private readonly options: FunctionHostOptions) {
    this.name = options.spec.name;
    this.timeoutMs = options.timeoutMs ?? options.spec.timeoutSeconds * 1000;
    this.maxSandboxes = options.maxSandboxes ?? defaultMaxSandboxes();
    if (!Number.isInteger(this.maxSandboxes) || this.maxSandboxes < 1) {
      throw new Error(`maxSandboxes must be a positive integer, got ${options.maxSandboxes} (function ${this.name})`);
    }
  }

  /** Sandboxes alive now. */
  get sandboxCount(): number {
    return this.sandboxes.size;
  }

  /** The environment this function runs with: base + static + exactly its bindings' keys. */
  environment(): Record<string, string> {
    const { spec, bindingValues, baseEnv } = this.options;
    const env: Record<string, string> = { ...baseEnv, ...spec.environment };
    for (const key of envKeysOf(spec)) {
      const value = bindingValues[key];
      if (value === undefined) throw new Error(`local runtime has no value for ${key} (function ${spec.name})`);
      env[key] = value;
    }
    for (const key of triggerEnvKeysOf(spec)) {
      const value = this.options.triggerValues?.[key];
      if (value === undefined) throw new Error(`local runtime has no value for ${key} (function ${spec.name})`);
      env[key] = value;
    }
    env.AWS_LAMBDA_FUNCTION_NAME = spec.name;
    env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE = String(spec.memoryMB);
    // As in CDK (lib/tenantcast-function.ts): the service in every log line is the function's name.
    env.POWERTOOLS_SERVICE_NAME = spec.name;
    return env;
  }

  /** Starts one warm sandbox if none is alive (the runtime does this at start-up). */
  async start(): Promise<void> {
    if (this.sandboxes.size > 0) {
      await Promise.all([...this.sandboxes].map((s) => s.ready.catch(() => undefined)));
      return;
    }
    this.release(await this.acquire());
  }

  private spawn(): Sandbox {
    const { spec, root, bundleDir } = this.options;
    this.coldStarts++;
    const entry = bundleDir === undefined ? resolve(root, spec.entry) : bundleFileOf(bundleDir, spec.name);
    const worker = new Worker(new URL('./function-worker.mjs', import.meta.url), {
      env: this.environment(),
      stdout: true,
      stderr: true,
      workerData: {
        entryUrl: pathToFileURL(entry).href,
        functionName: spec.name,
        memoryMB: spec.memoryMB,
        timeoutMs: this.timeoutMs,
        region: this.options.baseEnv.AWS_REGION ?? 'local',
      },
    });
    this.pipeLogs(worker);
    let sandbox: Sandbox;
    const ready = new Promise<void>((resolveReady, rejectReady) => {
      worker.once('error', rejectReady);
      worker.on(
        'message',
        (msg: {
          ready?: boolean;
          id?: number;
          ok?: boolean;
          result?: unknown;
          error?: { name: string; message: string; stack?: string };
        }) => {
          if (msg.ready) {
            worker.off('error', rejectReady);
            resolveReady();
            return;
          }
          const pending = sandbox.pending;
          if (pending === undefined) return;
          sandbox.pending = undefined;
          clearTimeout(pending.timer);
          if (msg.ok) pending.resolve(msg.result);
          else {
            this.errors++;
            const e = msg.error ?? { name: 'Error', message: 'unknown error' };
            pending.reject(new FunctionError(e.name, e.message, e.stack));
          }
        },
      );
    });
    sandbox = { worker, ready, pending: undefined, dead: false };
    this.sandboxes.add(sandbox);
    worker.on('error', (err) => this.fail(sandbox, err));
    worker.on('exit', () => this.fail(sandbox, new FunctionError('Runtime.ExitError', `${spec.name} sandbox exited`)));
    return sandbox;
  }

  /**
   * A sandbox for one invocation: an idle one, else the next one freed or started. Sandboxes start one at a time
   * (a cold start costs ~0.7 s of CPU here; eight at once on two cores would starve everything else), while
   * invocations are waiting and the cap allows.
   */
  private acquire(): Promise<Sandbox> {
    const warm = this.idle.pop();
    if (warm !== undefined) return Promise.resolve(warm);
    const waiting = new Promise<Sandbox>((resolve, reject) => this.queue.push({ resolve, reject }));
    this.grow();
    return waiting;
  }

  /** Starts a sandbox for the waiting invocations, if none is starting and the cap allows. */
  private grow(): void {
    if (this.starting || this.closed || this.queue.length === 0 || this.sandboxes.size >= this.maxSandboxes) return;
    this.starting = true;
    const sandbox = this.spawn();
    sandbox.ready.then(
      () => {
        this.starting = false;
        this.release(sandbox);
        this.grow();
      },
      (err: unknown) => {
        this.starting = false;
        this.fail(sandbox, err as Error);
        const error = new FunctionError('Runtime.InitError', `${this.name} failed to start: ${(err as Error).message}`);
        for (const waiting of this.queue.splice(0)) waiting.reject(error);
      },
    );
  }

  /** Hands a free sandbox to the next waiting invocation, or parks it. */
  private release(sandbox: Sandbox): void {
    if (sandbox.dead || this.closed) return;
    const next = this.queue.shift();
    if (next !== undefined) next.resolve(sandbox);
    else this.idle.push(sandbox);
  }

  /** Invokes the handler with `event`; resolves with its result, rejects with its error (same name and message). */
  async invoke(event: unknown): Promise<unknown> {
    if (this.closed) throw new FunctionError('ServiceException', `${this.name} is stopped`);
    const sandbox = await this.acquire();
    if (this.closed) throw new FunctionError('ServiceException', `${this.name} is stopped`);
    this.invocations++;
    const id = this.nextId++;
    const started = performance.now();
    const settle = () => {
      const elapsed = performance.now() - started;
      this.durationMs += elapsed;
      this.billedDurationMs += Math.ceil(elapsed);
      this.lastEndedAt = performance.timeOrigin + performance.now();
    };
    return new Promise((resolvePromise, rejectPromise) => {
      const timer = setTimeout(() => {
        sandbox.pending = undefined;
        this.errors++;
        settle();
        rejectPromise(
          new FunctionError('Sandbox.Timedout', `Task timed out after ${(this.timeoutMs / 1000).toFixed(2)} seconds`),
        );
        // Lambda discards a sandbox whose invocation timed out.
        void this.recycle(sandbox);
      }, this.timeoutMs);
      sandbox.pending = {
        resolve: (value) => {
          settle();
          resolvePromise(value);
          this.release(sandbox);
        },
        reject: (err) => {
          settle();
          rejectPromise(err);
          this.release(sandbox);
        },
        timer,
      };
      sandbox.worker.postMessage({ id, event, requestId: randomUUID() });
    });
  }

  /**
   * Kills every sandbox mid-invocation, as a crash (out of memory, runtime exit) would: their invocations fail with
   * `Runtime.ExitError` and the next invocation starts a fresh sandbox. For fault tests.
   */
  async crash(): Promise<void> {
    await Promise.all([...this.sandboxes].map((s) => this.recycle(s)));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiting of this.queue.splice(0)) {
      waiting.reject(new FunctionError('ServiceException', `${this.name} is stopped`));
    }
    await Promise.all([...this.sandboxes].map((s) => this.recycle(s)));
  }

  private async recycle(sandbox: Sandbox): Promise<void> {
    this.retire(sandbox);
    await sandbox.worker.terminate();
  }

  /** Takes a sandbox out of service; waiting invocations get a fresh one instead. */
  private retire(sandbox: Sandbox): void {
    if (sandbox.dead) return;
    sandbox.dead = true;
    this.sandboxes.delete(sandbox);
    const at = this.idle.indexOf(sandbox);
    if (at >= 0) this.idle.splice(at, 1);
    if (this.closed) {
      for (const waiting of this.queue.splice(0)) {
        waiting.reject(new FunctionError('ServiceException', `${this.name} is stopped`));
      }
    } else this.grow();
  }

  private fail(sandbox: Sandbox, err: Error): void {
    this.retire(sandbox);
    const pending = sandbox.pending;
    if (pending === undefined) return;
    sandbox.pending = undefined;
    clearTimeout(pending.timer);
    pending.reject(err instanceof FunctionError ? err : new FunctionError('Runtime.Error', err.message));
  }

  private pipeLogs(worker: Worker): void {
    const sink = this.options.onLog ?? ((_name: string, line: string) => process.stdout.write(`${line}\n`));
    for (const stream of [worker.stdout, worker.stderr]) {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          sink(this.name, buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
        }
      });
    }
  }
}
