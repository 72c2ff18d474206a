/**
 * Parent side of the receiving clients: they run in a child process (bench/receivers.ts) with their own event loop,
 * so their JSON parsing does not compete with the local runtime's gateway on the bench's main thread. The same
 * child-process receivers serve the plain `ws` baseline and the pipeline, so the ratio between them stays fair.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';
import { createRecorder, type LatencyRecorder } from './clients.ts';

/** What the parent sends the receivers process. */
export type ToReceivers =
  | {
      type: 'open';
      url: string;
      /** One WebSocket subprotocol list per socket (its length is the socket count); empty lists for no subprotocol. */
      protocols: string[][];
      /** When set, every socket subscribes to this group (tenantcast protocol) before `ready`. */
      group?: string;
      parallel?: number;
    }
  /** Starts measurement number `epoch`; progress from an earlier epoch is ignored by the parent. */
  | { type: 'reset'; epoch: number }
  | { type: 'collect' }
  | { type: 'close' };

export interface ReceiverCounts {
  epoch: number;
  received: number;
  frames: number;
  duplicates: number;
  firstAt: number;
  lastAt: number;
}

/** What the receivers process sends back. */
export type FromReceivers =
  | { type: 'ready'; count: number }
  /** The counts of measurement `epoch` start from zero. */
  | { type: 'reset-done'; epoch: number }
  | { type: 'error'; message: string }
  | ({ type: 'progress' } & ReceiverCounts)
  | ({ type: 'collected'; samples: Float64Array } & ReceiverCounts);

const CHILD = resolve(import.meta.dirname, 'receivers.ts');

export interface RemoteReceiversOptions {
  readonly url: string;
  readonly protocols: string[][];
  /** @default no subscription (plain ws baseline) */
  readonly group?: string;
  /** @default 50 handshakes at once */
  readonly parallel?: number;
}

/** A set of receiving sockets in their own process; `recorder` mirrors the counts as progress arrives. */
export class RemoteReceivers {
  /** Counts streamed from the child (~every 100 ms); samples are filled in by `collect()`. */
  readonly recorder: LatencyRecorder = createRecorder();

  private waiting: ((message: FromReceivers) => boolean)[] = [];
  private epoch = 0;

  private constructor(
    private readonly child: ChildProcess,
    readonly count: number,
  ) {
    child.on('message', (message: FromReceivers) => {
      if (message.type === 'progress' && message.epoch === this.epoch) this.apply(message);
      this.waiting = this.waiting.filter((w) => !w(message));
    });
  }

  static async start(options: RemoteReceiversOptions): Promise<RemoteReceivers> {
    const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: 'inherit' });
    const receivers = new RemoteReceivers(child, options.protocols.length);
    const ready = receivers.next('ready');
    receivers.send({
      type: 'open',
      url: options.url,
      protocols: options.protocols,
      ...(options.group === undefined ? {} : { group: options.group }),
      parallel: options.parallel ?? 50,
    });
    try {
      await ready;
    } catch (error) {
      child.kill();
      throw error;
    }
    return receivers;
  }

  /**
   * Starts a fresh measurement (counts, duplicates and samples back to zero): resolves once the child counts from zero. Until 2026-12-04 it did not wait, and a plain
   * `ws` delivery (well under a millisecond) could reach the child before the reset did: its counts were wiped, and the
   * scenario waited its whole timeout for 50 deliveries it had already had (the group of 50's baseline, 21:12 run).
   */
  async reset(): Promise<void> {
    Object.assign(this.recorder, createRecorder());
    this.epoch++;
    const epoch = this.epoch;
    const done = this.next('reset-done', (m) => (m as { epoch?: number }).epoch === epoch);
    this.send({ type: 'reset', epoch });
    await done;
  }

  /** Fetches the final counts and all latency samples into `recorder`. */
  async collect(): Promise<LatencyRecorder> {
    const collected = this.next('collected');
    this.send({ type: 'collect' });
    const message = (await collected) as Extract<FromReceivers, { type: 'collected' }>;
    this.apply(message);
    this.recorder.samples.length = 0;
    for (const sample of message.samples) this.recorder.samples.push(sample);
    return this.recorder;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.send({ type: 'close' });
    const timer = setTimeout(() => this.child.kill(), 5000);
    await exited;
    clearTimeout(timer);
  }

  private apply(counts: Omit<ReceiverCounts, 'epoch'>) {
    this.recorder.received = counts.received;
    this.recorder.frames = counts.frames;
    this.recorder.duplicates = counts.duplicates;
    this.recorder.firstAt = counts.firstAt;
    this.recorder.lastAt = counts.lastAt;
  }

  private send(message: ToReceivers) {
    this.child.send(message);
  }

  private next(
    type: FromReceivers['type'],
    matches: (message: FromReceivers) => boolean = () => true,
  ): Promise<FromReceivers> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`receivers process exited (${code}) before ${type}`));
      this.child.once('exit', onExit);
      this.waiting.push((message) => {
        if (message.type === 'error') {
          this.child.off('exit', onExit);
          reject(new Error(`receivers: ${message.message}`));
          return true;
        }
        if (message.type !== type || !matches(message)) return false;
        this.child.off('exit', onExit);
        resolve(message);
        return true;
      });
    });
  }
}
