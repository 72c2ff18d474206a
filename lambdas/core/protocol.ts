/**
 * The wire protocol between browsers and tenantcast (docs/protocol.md). Client frames are validated with zod;
 * server frames are built here so every handler speaks the same shapes.
 */
import { BadRequestError, type ErrorCode } from './errors.ts';
import * as z from './zod.ts';

/**
 * The user ids a user's own group `user:<id>` can name (docs/protocol.md, "Groups"): printable ASCII but `#` (the
 * key separator, docs/data-model.md), as many characters as a user id may have (auth.ts). OpenID Connect's `sub` is
 * ASCII, and issuers spell it `auth0|…`, `google-oauth2|…` or as an e-mail address: until 2026-12-04 a user group
 * took only the characters of other group names, so such users could be sent nothing of their own.
 */
export const USER_GROUP_ID = /^[!"$-~]{1,256}$/;
/** Group names: letters, digits and `_.:-`, 1 to 128; or `user:` and a user id as `USER_GROUP_ID` takes it. */
export const GROUP_PATTERN = /^(?:[A-Za-z0-9_.:-]{1,128}|user:[!"$-~]{1,256})$/;
/** Tenant ids become part of DynamoDB keys; they must never contain the key separator `#`. */
export const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const ref = z.optional(z.string().check(z.maxLength(128, 'ref must be at most 128 characters')));
const group = z.string().check(z.regex(GROUP_PATTERN, `group must match ${GROUP_PATTERN.source}`));

export const SubscribeFrame = z.strictObject({
  action: z.literal('subscribe'),
  group,
  /** Replay what the group delivered after this seq first (docs/protocol.md, "Recovery"). */
  since: z.optional(z.number().check(z.int('since must be an integer'), z.nonnegative('since must not be negative'))),
  ref,
});
export const UnsubscribeFrame = z.strictObject({ action: z.literal('unsubscribe'), group, ref });
export const PublishFrame = z.strictObject({
  action: z.literal('publish'),
  group,
  data: z.unknown().check(z.refine((v) => v !== undefined, 'data is required')),
  ref,
});
export const PingFrame = z.strictObject({ action: z.literal('ping'), ref });
/** Who is in a group: answered with an ack carrying `members` (docs/protocol.md, "Presence"). */
export const PresenceFrame = z.strictObject({
  action: z.literal('presence'),
  group,
  /** The members after this user id (the `next` of the previous answer); absent: from the first. */
  after: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  ref,
});
/** A fresh token for the open connection (docs/security.md, "Token lifetime"). Never logged. */
export const RefreshFrame = z.strictObject({
  action: z.literal('refresh'),
  token: z
    .string()
    .check(z.minLength(1, 'token must not be empty'), z.maxLength(8192, 'token must be at most 8192 characters')),
  ref,
});

export type SubscribeFrame = z.infer<typeof SubscribeFrame>;
export type UnsubscribeFrame = z.infer<typeof UnsubscribeFrame>;
export type PublishFrame = z.infer<typeof PublishFrame>;
export type PingFrame = z.infer<typeof PingFrame>;
export type RefreshFrame = z.infer<typeof RefreshFrame>;
export type PresenceFrame = z.infer<typeof PresenceFrame>;

export const clientActions = ['subscribe', 'unsubscribe', 'publish', 'ping', 'refresh', 'presence'] as const;
export type ClientAction = (typeof clientActions)[number];

const frameSchemas = {
  subscribe: SubscribeFrame,
  unsubscribe: UnsubscribeFrame,
  publish: PublishFrame,
  ping: PingFrame,
  refresh: RefreshFrame,
  presence: PresenceFrame,
} as const;

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PublishFrame | PingFrame | RefreshFrame | PresenceFrame;

/** The `ref` of a frame, if it has a usable one, so even a rejected frame's error can be correlated. */
export function refOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = (value as Record<string, unknown>).ref;
  return typeof candidate === 'string' && candidate.length <= 128 ? candidate : undefined;
}

/** JSON.parse that reports a BAD_REQUEST instead of a SyntaxError. */
export function parseJsonFrame(body: string | undefined | null): unknown {
  if (body === undefined || body === null || body === '') throw new BadRequestError('empty frame');
  try {
    return JSON.parse(body);
  } catch {
    throw new BadRequestError('frame is not valid JSON');
  }
}

/** Validates a parsed frame: a known action with the right fields, or a BAD_REQUEST that says what is wrong. */
export function parseClientFrame(value: unknown): ClientFrame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('frame must be a JSON object');
  }
  const action = (value as Record<string, unknown>).action;
  if (action === undefined) throw new BadRequestError("frame has no 'action'");
  if (typeof action !== 'string') throw new BadRequestError("'action' must be a string");
  if (!Object.hasOwn(frameSchemas, action)) {
    throw new BadRequestError(`unknown action '${truncate(action, 40)}'`);
  }
  const result = frameSchemas[action as ClientAction].safeParse(value);
  if (!result.success) throw new BadRequestError(describeIssue(result.error.issues[0], value));
  return result.data;
}

function describeIssue(issue: z.core.$ZodIssue | undefined, value: object): string {
  if (issue === undefined) return 'invalid frame';
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${truncate(k, 40)}'`).join(', ')}`;
  }
  const path = issue.path.map(String).join('.');
  if (issue.code === 'invalid_type') {
    const given = issue.path.length === 1 ? (value as Record<PropertyKey, unknown>)[issue.path[0] as PropertyKey] : 0;
    return `'${path}' ${given === undefined ? 'is required' : `must be a ${issue.expected}`}`;
  }
  return path ? `'${path}': ${issue.message}` : issue.message;
}

function truncate(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

// ---- server → client frames ----

export interface AckFrame {
  type: 'ack';
  ref?: string;
  id?: string;
  /** On a live subscribe: the group's seq when the subscription took effect; every later message reaches it. */
  seq?: number;
  /**
   * On a `presence`: the group's live members, one entry per user, sorted by user id, as many as fit one frame
   * (docs/protocol.md, "Presence"); `total` users in all, and `next` (pass it as `after`) when more follow.
   */
  members?: { userId: string; connections: number }[];
  total?: number;
  next?: string;
}
export interface PongFrame {
  type: 'pong';
  ref?: string;
}
export interface ErrorFrame {
  type: 'error';
  ref?: string;
  code: ErrorCode;
  message: string;
  /** With RATE_LIMITED: when the next attempt can succeed. */
  retryAfterMs?: number;
}
export interface MessageFrame {
  type: 'message';
  group: string;
  id: string;
  /** Consecutive per tenant and group, from 1 (docs/delivery.md). */
  seq: number;
  data: unknown;
  from: string;
  ts: number;
}
/** Several messages for one connection in one frame (at most `limits.frameBytes`). */
export interface BatchFrame {
  type: 'batch';
  messages: MessageFrame[];
}
/** History after the client's `since` is gone: reload state, then continue from `seq`. */
export interface ResetFrame {
  type: 'reset';
  group: string;
  /**
   * `HISTORY_EXPIRED`: part of it is gone; `HISTORY_TOO_LONG`: too much to replay (`limits.replayMessages`);
   * `REPLAY_FAILED`: the replay failed for good (lambdas/core/broadcast.ts, `abandonReplay`); `RULES_CHANGED`: an
   * entity's live feed whose history was judged under rules other than those in force (lambdas/core/entities/feed-rules.ts).
   */
  reason: 'HISTORY_EXPIRED' | 'HISTORY_TOO_LONG' | 'REPLAY_FAILED' | 'RULES_CHANGED';
  seq: number;
}
/** A user's first connection joined, or last connection left, a group with presence events (docs/protocol.md). */
export interface PresenceEventFrame {
  type: 'presence';
  group: string;
  event: 'join' | 'leave';
  userId: string;
}
export type ServerFrame =
  | AckFrame
  | PongFrame
  | ErrorFrame
  | MessageFrame
  | BatchFrame
  | ResetFrame
  | PresenceEventFrame;

export function ack(ref: string | undefined, id?: string, seq?: number): AckFrame {
  return {
    type: 'ack',
    ...(ref !== undefined && { ref }),
    ...(id !== undefined && { id }),
    ...(seq !== undefined && { seq }),
  };
}

export function pong(ref: string | undefined): PongFrame {
  return { type: 'pong', ...(ref !== undefined && { ref }) };
}

export function errorFrame(
  ref: string | undefined,
  code: ErrorCode,
  message: string,
  extra: { retryAfterMs?: number } = {},
): ErrorFrame {
  return {
    type: 'error',
    ...(ref !== undefined && { ref }),
    code,
    message,
    ...(extra.retryAfterMs !== undefined && { retryAfterMs: extra.retryAfterMs }),
  };
}
