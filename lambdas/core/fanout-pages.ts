/**
 * Fan-out jobs shaped to fit one SQS message (docs/delivery.md, "Large groups"; docs/limits.md). A page of a lane
 * lists its connections and the frames each gets, frames shared between connections stored once. When a page's JSON
 * would pass `maxBytes` (quote-heavy data doubles in JSON), it is cut into consecutive jobs by frame: job k carries
 * frames [a_k, b_k) and, for each connection, its frames in that range. The fan-out queue is FIFO per lane and jobs
 * are sent in order, so every connection still gets its frames in order (each connection's frame indexes rise, which
 * `pageJob` guarantees by storing a frame again rather than pointing back). A single frame with a page's worth of
 * recipients that still does not fit has its recipients halved.
 */
import type { FanoutJob } from './delivery.ts';
import { sqsMessageBody } from './sqs-batches.ts';

type JobHead = Pick<FanoutJob, 'tenantId' | 'group' | 'batchSeq' | 'lastSeq' | 'lane'>;

/** The job of one page: frames stored once, each connection's frame indexes rising. */
export function pageJob(head: JobHead, entries: readonly (readonly [string, readonly string[]])[]): FanoutJob {
  const frames: string[] = [];
  const index = new Map<string, number>();
  const recipients: Record<string, number[]> = {};
  for (const [connectionId, own] of entries) {
    const indexes: number[] = [];
    for (const frame of own) {
      let i = index.get(frame);
      if (i === undefined || i <= (indexes.at(-1) ?? -1)) {
        i = frames.push(frame) - 1;
        index.set(frame, i);
      }
      indexes.push(i);
    }
    recipients[connectionId] = indexes;
  }
  return { v: 1, kind: 'fanout', ...head, frames, recipients };
}

const bytesOf = (job: FanoutJob) => Buffer.byteLength(sqsMessageBody(job), 'utf8');

/**
 * At least as many bytes as `job`'s JSON, without building it: JSON escapes a character of a string in at most 6
 * bytes (`\u001f`), each recipient costs its id, its indexes and a few separators, and the envelope is small.
 */
function upperBound(job: FanoutJob): number {
  let bytes = 512 + Buffer.byteLength(job.tenantId) + Buffer.byteLength(job.group);
  for (const frame of job.frames) bytes += 6 * Buffer.byteLength(frame, 'utf8') + 3;
  for (const [id, indexes] of Object.entries(job.recipients)) bytes += 6 * id.length + 6 + 12 * indexes.length;
  return bytes;
}

/** `job`, or consecutive jobs cut from it, each at most `maxBytes` of JSON. */
export function fitJob(job: FanoutJob, maxBytes: number): FanoutJob[] {
  // The common case (a page far below the limit) is decided without serializing it: enqueueing serializes it anyway.
  if (upperBound(job) <= maxBytes || bytesOf(job) <= maxBytes) return [job];
  const out: FanoutJob[] = [];
  let from = 0;
  while (from < job.frames.length) {
    // The longest run of frames from `from` that fits (at least one frame).
    let to = from + 1;
    while (to < job.frames.length && bytesOf(slice(job, from, to + 1)) <= maxBytes) to++;
    const part = slice(job, from, to);
    out.push(...(bytesOf(part) <= maxBytes ? [part] : splitRecipients(part, maxBytes)));
    from = to;
  }
  return out;
}

/** Frames [from, to) of `job`, with each connection's indexes in that range, renumbered from 0. */
function slice(job: FanoutJob, from: number, to: number): FanoutJob {
  const recipients: Record<string, number[]> = {};
  for (const [connectionId, indexes] of Object.entries(job.recipients)) {
    const inside = indexes.filter((i) => i >= from && i < to).map((i) => i - from);
    if (inside.length > 0) recipients[connectionId] = inside;
  }
  return { ...job, frames: job.frames.slice(from, to), recipients };
}

/** A job of frames too big for its many recipients: halves of its recipients, each with the frames it needs. */
function splitRecipients(job: FanoutJob, maxBytes: number): FanoutJob[] {
  const ids = Object.keys(job.recipients);
  if (ids.length <= 1) {
    throw new Error(`a fan-out job of ${bytesOf(job)} bytes for one connection cannot fit ${maxBytes} bytes`);
  }
  const half = Math.ceil(ids.length / 2);
  return [ids.slice(0, half), ids.slice(half)].flatMap((part) =>
    fitJob(
      pageJob(
        job,
        part.map((id) => [id, (job.recipients[id] ?? []).map((i) => job.frames[i] ?? '')] as const),
      ),
      maxBytes,
    ),
  );
}
