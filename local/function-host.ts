/**
 * Runs the functions of the manifest locally, each in its own worker thread (its "sandbox") with exactly the
 * environment its bindings give it in AWS, so a function that reads a variable it was not bound to fails here as it
 * would there. Invocations are calls across the thread boundary with JSON-shaped events and results, like Lambda's.
 * A handler that runs past its timeout fails with `Task timed out` and its sandbox is replaced, as Lambda does.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { envKeysOf, type FunctionSpec } from '../lambdas/manifest.ts';

export interface FunctionHostOptions {
  readonly spec: FunctionSpec;
  /** Values for every environment key a binding can set, plus AWS_* endpoint/region/credential variables. */
  readonly bindingValues: Readonly<Record<string, string>>;
  /** Environment every function gets (region, endpoints, credentials, log level). */
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly root: string;
  /** Where the function's stdout/stderr lines go (its CloudWatch log stream). @default process.stdout */
  readonly onLog?: (functionName: string, line: string) => void;
  /** Override the manifest's timeout (tests). */
  readonly timeoutMs?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
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
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  private readonly timeoutMs: number;

  constructor(private readonly options: FunctionHostOptions) {
    this.name = options.spec.name;
    this.timeoutMs = options.timeoutMs ?? options.spec.timeoutSeconds * 1000;
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
    env.AWS_LAMBDA_FUNCTION_NAME = spec.name;
    env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE = String(spec.memoryMB);
    // As in CDK (lib/tenantcast-function.ts): the service in every log line is the function's name.
    env.POWERTOOLS_SERVICE_NAME = spec.name;
    return env;
  }

  start(): Promise<void> {
    if (this.ready) return this.ready;
    const { spec, root } = this.options;
    const worker = new Worker(new URL('./function-worker.mjs', import.meta.url), {
      env: this.environment(),
      stdout: true,
      stderr: true,
      workerData: {
        entryUrl: pathToFileURL(resolve(root, spec.entry)).href,
        functionName: spec.name,
        memoryMB: spec.memoryMB,
        timeoutMs: this.timeoutMs,
        region: this.options.baseEnv.AWS_REGION ?? 'local',
      },
    });
    this.worker = worker;
    this.pipeLogs(worker);
    this.ready = new Promise<void>((resolveReady, rejectReady) => {
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
          const pending = msg.id === undefined ? undefined : this.pending.get(msg.id);
          if (!pending || msg.id === undefined) return;
          this.pending.delete(msg.id);
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
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => {
      if (this.worker === worker) {
        this.worker = undefined;
        this.ready = undefined;
      }
      this.failAll(new FunctionError('Runtime.ExitError', `${spec.name} sandbox exited`));
    });
    return this.ready;
  }

  /** Invokes the handler with `event`; resolves with its result, rejects with its error (same name and message). */
  async invoke(event: unknown): Promise<unknown> {
    if (this.closed) throw new FunctionError('ServiceException', `${this.name} is stopped`);
    await this.start();
    const worker = this.worker;
    if (!worker) throw new FunctionError('ServiceException', `${this.name} has no sandbox`);
    this.invocations++;
    const id = this.nextId++;
    const started = performance.now();
    const settle = () => {
      const elapsed = performance.now() - started;
      this.durationMs += elapsed;
      this.billedDurationMs += Math.ceil(elapsed);
    };
    return new Promise((resolvePromise, rejectPromise) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.errors++;
        settle();
        rejectPromise(
          new FunctionError('Sandbox.Timedout', `Task timed out after ${(this.timeoutMs / 1000).toFixed(2)} seconds`),
        );
        // Lambda discards a sandbox whose invocation timed out.
        void this.recycle(worker);
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          settle();
          resolvePromise(value);
        },
        reject: (err) => {
          settle();
          rejectPromise(err);
        },
        timer,
      });
      worker.postMessage({ id, event, requestId: randomUUID() });
    });
  }

  /**
   * Kills the current sandbox mid-invocation, as a crash (out of memory, runtime exit) would: its invocations fail
   * with `Runtime.ExitError` and the next invocation starts a fresh sandbox. For fault tests.
   */
  async crash(): Promise<void> {
    const worker = this.worker;
    if (worker) await this.recycle(worker);
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (worker) await worker.terminate();
  }

  private async recycle(worker: Worker): Promise<void> {
    if (this.worker === worker) {
      this.worker = undefined;
      this.ready = undefined;
    }
    await worker.terminate();
  }

  private failAll(err: Error): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(err instanceof FunctionError ? err : new FunctionError('Runtime.Error', err.message));
      this.pending.delete(id);
    }
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
