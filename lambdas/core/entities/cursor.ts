/**
 * Opaque keyset cursors: base64url of `{"e":<entity>,"k":<last primary key>}`. The entity is checked on the way
 * back so a cursor of one entity cannot page another; the key is re-validated against the primary key's type.
 */
import { BadRequestError } from '../errors.ts';
import { MAX_KEY_LENGTH } from './events.ts';

/**
 * The longest cursor `encodeCursor` makes: JSON escapes a character in at most 6 bytes, for a key of `MAX_KEY_LENGTH`
 * characters and an entity name of PostgreSQL's 63 bytes, in base64url (4 characters per 3 bytes). Until 2026-12-03
 * the cap was 1,024 characters, and the cursor after a 256-character key of `€` (1,047 characters) was refused.
 */
const MAX_CURSOR_CHARS = Math.ceil((6 * (MAX_KEY_LENGTH + 63) + 32) / 3) * 4;

export function encodeCursor(entity: string, lastKey: unknown): string {
  return Buffer.from(JSON.stringify({ e: entity, k: lastKey }), 'utf8').toString('base64url');
}

/** The JSON object a cursor of ours holds; BAD_REQUEST for anything else. */
function parseCursor(cursor: string): { e?: unknown; k?: unknown; v?: unknown } {
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new BadRequestError('invalid cursor');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestError('invalid cursor');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new BadRequestError('invalid cursor');
  return parsed;
}

/** The primary key value the next page starts after; BAD_REQUEST for anything that is not our cursor. */
export function decodeCursor(cursor: string, entity: string): string | number {
  const { e, k } = parseCursor(cursor);
  if (e !== entity || (typeof k !== 'string' && typeof k !== 'number')) throw new BadRequestError('invalid cursor');
  return k;
}

/** A change-log page's cursor: base64url of `{"e":<entity>,"k":<key>,"v":<last version read>}`. */
export function encodeChangesCursor(entity: string, key: string, version: number): string {
  return Buffer.from(JSON.stringify({ e: entity, k: key, v: version }), 'utf8').toString('base64url');
}

/** The version a change-log page starts after; BAD_REQUEST for anything that is not a cursor of this very key. */
export function decodeChangesCursor(cursor: string, entity: string, key: string): number {
  const { e, k, v } = parseCursor(cursor);
  if (e !== entity || k !== key || typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new BadRequestError('invalid cursor');
  }
  return v;
}
