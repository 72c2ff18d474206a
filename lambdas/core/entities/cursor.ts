/**
 * Opaque keyset cursors: base64url of `{"e":<entity>,"k":<last primary key>}`. The entity is checked on the way
 * back so a cursor of one entity cannot page another; the key is re-validated against the primary key's type.
 */
import { BadRequestError } from '../errors.ts';

export function encodeCursor(entity: string, lastKey: unknown): string {
  return Buffer.from(JSON.stringify({ e: entity, k: lastKey }), 'utf8').toString('base64url');
}

/** The primary key value the next page starts after; BAD_REQUEST for anything that is not our cursor. */
export function decodeCursor(cursor: string, entity: string): string | number {
  if (cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new BadRequestError('invalid cursor');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestError('invalid cursor');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new BadRequestError('invalid cursor');
  const { e, k } = parsed as { e?: unknown; k?: unknown };
  if (e !== entity || (typeof k !== 'string' && typeof k !== 'number')) throw new BadRequestError('invalid cursor');
  return k;
}
