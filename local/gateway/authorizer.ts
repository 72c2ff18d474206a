/**
 * The REQUEST authorizer as API Gateway applies it, in pure functions: identity sources checked before invoking
 * it (missing → 401), its thrown `Unauthorized` (→ 401), and its result validated and its policy evaluated for the
 * $connect method ARN (Deny or no Allow → 403, malformed → 500), `context` values stringified.
 */
import type { HandshakeRequest } from '../lambda-events.ts';
import { isRecord } from './util.ts';

export type AuthDecision =
  | { ok: true; principalId: string; context: Record<string, string | null> }
  | { ok: false; status: 403 | 500; why: string };

/** True when the authorizer failed with `Unauthorized` (thrown as a string or an Error), which API Gateway answers 401. */
export function isUnauthorized(err: unknown): boolean {
  return err === 'Unauthorized' || (err instanceof Error && err.message === 'Unauthorized');
}

/** The first identity source that is missing or empty, if any. */
export function missingIdentitySource(sources: readonly string[], request: HandshakeRequest): string | undefined {
  for (const source of sources) {
    let value: string | undefined;
    if (source.startsWith('route.request.header.')) {
      const name = source.slice('route.request.header.'.length).toLowerCase();
      const key = Object.keys(request.headers).find((k) => k.toLowerCase() === name);
      value = key === undefined ? undefined : request.headers[key];
    } else if (source.startsWith('route.request.querystring.')) {
      value = request.queryStringParameters[source.slice('route.request.querystring.'.length)];
    } else {
      continue; // stage variables and context variables are always present here
    }
    if (value === undefined || value === '') return source;
  }
  return undefined;
}

function globToRegExp(glob: string, flags = ''): RegExp {
  const escaped = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${escaped}$`, flags);
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined ? [] : [value];
}

/** Validates an authorizer result and evaluates its policy for `methodArn`, as API Gateway does. */
export function evaluateAuthorizerResult(result: unknown, methodArn: string): AuthDecision {
  if (!isRecord(result)) return { ok: false, status: 500, why: 'authorizer result is not an object' };
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(result));
  } catch {
    return { ok: false, status: 500, why: 'authorizer result is not serializable' };
  }
  if (size > 8192) return { ok: false, status: 500, why: `authorizer result is ${size} bytes (limit 8 KB)` };
  const principalId = result.principalId;
  if (typeof principalId !== 'string') return { ok: false, status: 500, why: 'principalId is missing' };
  const policy = result.policyDocument;
  if (!isRecord(policy)) return { ok: false, status: 500, why: 'policyDocument is missing' };
  const statements = asList(policy.Statement);
  if (statements.length === 0) return { ok: false, status: 500, why: 'policyDocument has no Statement' };

  const context: Record<string, string | null> = {};
  if (result.context !== undefined && result.context !== null) {
    if (!isRecord(result.context)) return { ok: false, status: 500, why: 'context is not an object' };
    for (const [key, value] of Object.entries(result.context)) {
      if (value === undefined) continue;
      if (value === null) context[key] = null;
      else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        context[key] = String(value);
      } else {
        return { ok: false, status: 500, why: `context.${key} is not a string, number or boolean` };
      }
    }
  }

  let allowed = false;
  for (const statement of statements) {
    if (!isRecord(statement)) return { ok: false, status: 500, why: 'policy statement is not an object' };
    const effect = statement.Effect;
    if (effect !== 'Allow' && effect !== 'Deny') return { ok: false, status: 500, why: 'statement Effect is invalid' };
    const actions = asList(statement.Action);
    const resources = asList(statement.Resource);
    const actionMatches = actions.some((a) => typeof a === 'string' && globToRegExp(a, 'i').test('execute-api:Invoke'));
    const resourceMatches = resources.some((r) => typeof r === 'string' && globToRegExp(r).test(methodArn));
    if (!actionMatches || !resourceMatches) continue;
    if (effect === 'Deny') return { ok: false, status: 403, why: 'policy denies $connect' };
    allowed = true;
  }
  if (!allowed) return { ok: false, status: 403, why: 'policy does not allow $connect' };
  return { ok: true, principalId, context };
}
