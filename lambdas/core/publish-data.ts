/**
 * The rules every published `data` meets (docs/limits.md), checked before a publish is acknowledged on every path
 * (WebSocket `publish`, `POST /v1/publish`, the server SDK) and again by the broadcaster, which sets aside a message
 * that breaks them instead of retrying it (docs/delivery.md, "Poison messages"):
 *
 * - at most `limits.publishDataBytes` of JSON (so a message and its envelope fit one frame);
 * - objects and arrays nested at most `limits.publishDataDepth` (32, DynamoDB's own limit) deep;
 * - no empty object keys (DynamoDB refuses empty attribute names);
 * - numbers within ±(2^53 - 1), where JavaScript keeps every integer exact: a larger one has already lost digits
 *   when it was parsed (and the AWS SDK's DynamoDB marshaller refuses it). Send such values as strings.
 *
 * The walk is iterative and stops at the first problem, so a hostile 16,000-deep value costs no stack and little time.
 * Hand-written: zod's `z.json()` checks the shape of JSON but none of these limits.
 */
import { limits } from '../manifest.ts';
import { BadRequestError, type TenantcastError, TooLargeError } from './errors.ts';

/** Why `data` breaks a rule (a BAD_REQUEST or TOO_LARGE error naming it), or undefined when it is fine. */
export function publishDataProblem(data: unknown): TenantcastError | undefined {
  if (data === undefined) return new BadRequestError('data is required');
  const shape = shapeProblem(data);
  if (shape !== undefined) return new BadRequestError(shape);
  const bytes = Buffer.byteLength(JSON.stringify(data), 'utf8');
  if (bytes > limits.publishDataBytes) {
    return new TooLargeError(`data is ${bytes} bytes of JSON; the limit is ${limits.publishDataBytes}`);
  }
  return undefined;
}

/** Throws the error `publishDataProblem` describes. */
export function assertPublishData(data: unknown): void {
  const problem = publishDataProblem(data);
  if (problem !== undefined) throw problem;
}

function shapeProblem(data: unknown): string | undefined {
  const maxDepth = limits.publishDataDepth;
  // Each entry: a value and how many objects/arrays enclose it.
  const stack: [unknown, number][] = [[data, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return 'data must not contain NaN or Infinity';
      if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
        return `data contains the number ${value}, beyond ±(2^53 - 1): send it as a string`;
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth + 1 > maxDepth) return `data is nested more than ${maxDepth} levels deep`;
    if (Array.isArray(value)) {
      for (const item of value) stack.push([item, depth + 1]);
      continue;
    }
    for (const [key, item] of Object.entries(value)) {
      if (key === '') return 'data contains an empty object key';
      stack.push([item, depth + 1]);
    }
  }
  return undefined;
}
