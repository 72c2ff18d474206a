/**
 * What each connection receives for a run of sequenced messages of one group: the audience filter, coalescing of
 * superseded entity versions, and packing into `batch` frames of at most one API Gateway frame. Pure.
 */
import { limits } from '../manifest.ts';
import { type AudienceMember, isInAudience } from './audience.ts';
import { type SequencedMessage, toMessageFrame } from './delivery.ts';

export interface Recipient extends AudienceMember {
  readonly connectionId: string;
}

/**
 * Switches for measuring the naive pattern (one PostToConnection per message, nothing superseded): both default
 * to on; the benchmark turns them off through the broadcaster's environment.
 */
export interface PlanOptions {
  /** Several messages per `batch` frame. @default true */
  readonly packing?: boolean;
  /** Only the newest version of an entity key. @default true */
  readonly coalescing?: boolean;
}

/** `data.entity` + `data.key` of an entity update, or undefined for any other message. */
function entityKey(message: SequencedMessage): string | undefined {
  const data = message.data;
  if (typeof data !== 'object' || data === null) return undefined;
  const { entity, key } = data as { entity?: unknown; key?: unknown };
  if (typeof entity !== 'string' || (typeof key !== 'string' && typeof key !== 'number')) return undefined;
  return JSON.stringify([entity, key]);
}

function versionOf(message: SequencedMessage): number {
  const version = (message.data as { version?: unknown }).version;
  return typeof version === 'number' ? version : Number.NEGATIVE_INFINITY;
}

/**
 * Keeps only the newest version (highest `data.version`, then highest seq) of each entity key; other messages are
 * kept as they are. The result stays in seq order; superseded messages leave gaps in seq.
 */
export function coalesce(messages: readonly SequencedMessage[]): SequencedMessage[] {
  const newest = new Map<string, SequencedMessage>();
  for (const message of messages) {
    const key = entityKey(message);
    if (key === undefined) continue;
    const seen = newest.get(key);
    if (seen === undefined || versionOf(message) >= versionOf(seen)) newest.set(key, message);
  }
  return messages.filter((m) => {
    const key = entityKey(m);
    return key === undefined || newest.get(key) === m;
  });
}

const BATCH_OPEN = '{"type":"batch","messages":[';
const BATCH_CLOSE = ']}';

/** Message frames, packed: one message alone is a `message` frame, several a `batch` frame, each ≤ `frameBytes`. */
export function packFrames(
  messages: readonly SequencedMessage[],
  frameBytes: number = limits.frameBytes,
  options: PlanOptions = {},
): string[] {
  return packMessageJson(
    messages.map((m) => JSON.stringify(toMessageFrame(m))),
    frameBytes,
    options,
  );
}

/** `message` frame texts (JSON), packed in order like `packFrames`. */
function packMessageJson(jsons: readonly string[], frameBytes: number, options: PlanOptions): string[] {
  if (options.packing === false) return [...jsons];
  const frames: string[] = [];
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = () => {
    if (pending.length === 1) frames.push(pending[0] as string);
    else if (pending.length > 1) frames.push(`${BATCH_OPEN}${pending.join(',')}${BATCH_CLOSE}`);
    pending = [];
    pendingBytes = 0;
  };
  const overhead = BATCH_OPEN.length + BATCH_CLOSE.length;
  for (const json of jsons) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (pending.length > 0 && overhead + pendingBytes + pending.length + bytes > frameBytes) flush();
    pending.push(json);
    pendingBytes += bytes;
  }
  flush();
  return frames;
}

/**
 * The messages of a `message` or `batch` frame, each as `message` frame text with its id, or undefined for any
 * other frame (a `reset`, or text that is not a frame).
 */
function messagesOfFrame(
  frame: string,
): { readonly id: unknown; readonly seq: unknown; readonly json: string }[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame);
  } catch {
    return undefined;
  }
  const isMessage = (m: unknown): m is { type: 'message'; id?: unknown; seq?: unknown } =>
    typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'message';
  if (isMessage(parsed)) return [{ id: parsed.id, seq: parsed.seq, json: frame }];
  const list = (parsed as { type?: unknown; messages?: unknown } | null)?.messages;
  if ((parsed as { type?: unknown } | null)?.type !== 'batch' || !Array.isArray(list) || !list.every(isMessage)) {
    return undefined;
  }
  // JSON.stringify(JSON.parse(text)) gives back the text JSON.stringify made: the messages are sent as they were.
  return list.map((m) => ({ id: m.id, seq: m.seq, json: JSON.stringify(m) }));
}

/**
 * Frames that were packed separately (consecutive fan-out pages of one lane, docs/delivery.md "Large groups"),
 * re-packed into as few frames of at most `frameBytes` as possible: the messages of `message` and `batch` frames,
 * in order, packed like `packFrames`; any other frame (a `reset`) stays a frame of its own, in place; a message
 * that comes again (same id, e.g. in the page of a redelivered run) is sent once, and a message at or below `after`
 * (a seq the connection already got, read ahead from the log) is left out. Written by hand: it works on frame text,
 * which no kept library packs.
 */
export function repackFrames(
  frames: readonly string[],
  frameBytes: number = limits.frameBytes,
  options: PlanOptions = {},
  after = 0,
): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  let pending: string[] = [];
  for (const frame of frames) {
    const messages = messagesOfFrame(frame);
    if (messages === undefined) {
      out.push(...packMessageJson(pending, frameBytes, options), frame);
      pending = [];
      continue;
    }
    for (const { id, seq, json } of messages) {
      if (typeof seq === 'number' && seq <= after) continue;
      if (typeof id === 'string') {
        if (seen.has(id)) continue;
        seen.add(id);
      }
      pending.push(json);
    }
  }
  out.push(...packMessageJson(pending, frameBytes, options));
  return out;
}

/** The messages `recipient` may receive, coalesced. */
export function messagesFor(
  messages: readonly SequencedMessage[],
  recipient: AudienceMember,
  options: PlanOptions = {},
): SequencedMessage[] {
  const visible = messages.filter((m) => isInAudience(m.audience, recipient));
  return options.coalescing === false ? visible : coalesce(visible);
}

/**
 * Frames per recipient. Recipients who may receive the same messages share one plan (computed once, the same frame
 * strings), and when no message has an audience everyone shares the same frames. Keyed by what each may receive, not
 * by its roles and claims: claims usually hold something unique (an e-mail), and a large group's run then held a
 * plan per member (3,000 members × 10 messages of 16 KB took ~500 MB until 2026-12-03).
 */
export function planDelivery(
  messages: readonly SequencedMessage[],
  recipients: readonly Recipient[],
  frameBytes: number = limits.frameBytes,
  options: PlanOptions = {},
): Map<string, string[]> {
  const plans = new Map<string, string[]>();
  const filtered = messages.some((m) => m.audience !== undefined);
  const shared = new Map<string, string[]>();
  for (const recipient of recipients) {
    const visible = filtered ? messages.filter((m) => isInAudience(m.audience, recipient)) : messages;
    const key = filtered ? visible.map((m) => m.seq).join(',') : '';
    let frames = shared.get(key);
    if (frames === undefined) {
      frames = packFrames(options.coalescing === false ? visible : coalesce(visible), frameBytes, options);
      shared.set(key, frames);
    }
    if (frames.length > 0) plans.set(recipient.connectionId, frames);
  }
  return plans;
}
