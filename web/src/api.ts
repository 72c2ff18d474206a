/**
 * The entity HTTP API (docs/entities.md) from the browser: same origin, Bearer token from the session. Every failure
 * is an `ApiError` with the API's code (`CONFLICT`, `FORBIDDEN`, …); API Gateway's own `{"message":"Unauthorized"}`
 * becomes `UNAUTHORIZED`, and a request that never got an answer `NETWORK` (a code of this page only).
 */
import type { ChangeLogEntry, Row, Schema } from './schema.ts';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * The caller's tenant is not (or no longer) configured: the API answers FORBIDDEN naming it (lambdas/core/tenants.ts).
 * A tenant being onboarded is served within seconds of `tenants create` (docs/tenants.md), so a page waits for it.
 */
export function tenantNotConfigured(err: unknown): boolean {
  return err instanceof ApiError && err.code === 'FORBIDDEN' && /^tenant '.*' is not configured$/.test(err.message);
}

const codeByStatus: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'TOO_LARGE',
  429: 'RATE_LIMITED',
  503: 'UNAVAILABLE',
};

/** The error an API answer carries: `{"error":{"code","message"}}`, or API Gateway's `{"message"}`. */
export function errorFromAnswer(status: number, body: unknown): ApiError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as {
    error?: { code?: unknown; message?: unknown };
    message?: unknown;
  };
  const code = typeof b.error?.code === 'string' ? b.error.code : (codeByStatus[status] ?? 'INTERNAL');
  const message =
    typeof b.error?.message === 'string'
      ? b.error.message
      : typeof b.message === 'string'
        ? b.message
        : `HTTP ${status}`;
  return new ApiError(code, message, status);
}

export interface EntityApiOptions {
  /** A token for every request; `fresh`: not the cached one (asked once after a 401, then the request is repeated). */
  readonly getToken: (fresh?: boolean) => Promise<string>;
  /** @default '' (same origin) */
  readonly baseUrl?: string;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export class EntityApi {
  readonly #getToken: (fresh?: boolean) => Promise<string>;
  readonly #baseUrl: string;
  readonly #fetch: typeof fetch;

  constructor(options: EntityApiOptions) {
    this.#getToken = options.getToken;
    this.#baseUrl = options.baseUrl ?? '';
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  async #request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    try {
      return await this.#send<T>(await this.#getToken(), method, path, body, headers);
    } catch (err) {
      // The cached token may be from a signing key that is gone (a restarted local runtime): one try with a new one.
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      return this.#send<T>(await this.#getToken(true), method, path, body, headers);
    }
  }

  async #send<T>(
    token: string,
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
  ): Promise<T> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw new ApiError('NETWORK', `${method} ${path}: ${String(err)}`, 0);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw errorFromAnswer(response.status, parsed);
    return parsed as T;
  }

  schema(): Promise<Schema> {
    return this.#request('GET', '/v1/schema');
  }

  /** Every row the caller may see, following `nextCursor` (at most `maxRows`). */
  async list(entity: string, maxRows = 2000): Promise<Row[]> {
    const rows: Row[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `limit=500${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
      const page: { items: Row[]; nextCursor: string | null } = await this.#request(
        'GET',
        `/v1/entities/${encodeURIComponent(entity)}?${query}`,
      );
      rows.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null && rows.length < maxRows);
    return rows;
  }

  get(entity: string, key: string): Promise<Row> {
    return this.#request('GET', `/v1/entities/${encodeURIComponent(entity)}/${encodeURIComponent(key)}`);
  }

  create(entity: string, values: Readonly<Record<string, unknown>>): Promise<Row> {
    return this.#request('POST', `/v1/entities/${encodeURIComponent(entity)}`, values);
  }

  /** PATCH with `If-Match`: a stale `version` fails with `CONFLICT`. */
  update(entity: string, key: string, patch: Readonly<Record<string, unknown>>, version: number): Promise<Row> {
    return this.#request('PATCH', `/v1/entities/${encodeURIComponent(entity)}/${encodeURIComponent(key)}`, patch, {
      'if-match': String(version),
    });
  }

  /** DELETE with `If-Match`: a stale `version` fails with `CONFLICT` (204, no body). */
  async remove(entity: string, key: string, version: number): Promise<void> {
    await this.#request('DELETE', `/v1/entities/${encodeURIComponent(entity)}/${encodeURIComponent(key)}`, undefined, {
      'if-match': String(version),
    });
  }

  /** The key's whole change log, page after page (each `GET …/changes` gives at most 500 versions). */
  async changes(entity: string, key: string): Promise<ChangeLogEntry[]> {
    const items: ChangeLogEntry[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '?limit=500' : `?limit=500&cursor=${encodeURIComponent(cursor)}`;
      const answer: { items: ChangeLogEntry[]; nextCursor?: string | null } = await this.#request(
        'GET',
        `/v1/entities/${encodeURIComponent(entity)}/${encodeURIComponent(key)}/changes${query}`,
      );
      items.push(...answer.items);
      cursor = answer.nextCursor ?? null;
    } while (cursor !== null);
    return items;
  }
}
