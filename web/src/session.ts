/**
 * Who the demo is signed in as, and their tokens from the local development identity provider
 * (`POST /dev/token`, local/identity.ts). A token is reused until two minutes before it expires, so the SDK's
 * refresh (one minute before expiry by default) always gets a newer one; a fresh one is issued when asked for (a
 * connection that failed to open, an HTTP 401).
 */
import { ApiError, errorFromAnswer } from './api.ts';

export interface Identity {
  readonly tenantId: string;
  readonly userId: string;
  readonly roles: readonly string[];
}

/** The users the seeded tenants are meant for (local/seed.ts, local/seed-data.ts); any other can be typed in. */
export const demoUsers: readonly (Identity & { readonly note: string })[] = [
  { tenantId: 'acme', userId: 'alice', roles: ['member'], note: 'edits tasks' },
  { tenantId: 'acme', userId: 'bob', roles: ['member'], note: 'edits tasks' },
  { tenantId: 'acme', userId: 'ada', roles: ['admin'], note: 'tasks and campaigns' },
  { tenantId: 'acme', userId: 'mia', roles: ['marketing'], note: 'campaigns only' },
  { tenantId: 'acme', userId: 'vic', roles: ['viewer'], note: 'read only' },
  { tenantId: 'globex', userId: 'alice', roles: ['member'], note: 'her own tasks' },
  { tenantId: 'globex', userId: 'bob', roles: ['member'], note: 'his own tasks' },
  { tenantId: 'globex', userId: 'gina', roles: ['admin'], note: 'every task' },
];

export const identityId = (who: Identity): string => `${who.tenantId}:${who.userId}:${who.roles.join('+')}`;

export interface SessionOptions {
  readonly identity: Identity;
  /** @default 3600 */
  readonly ttlSeconds?: number;
  /** @default '' (same origin) */
  readonly baseUrl?: string;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

export interface IssuedToken {
  readonly token: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

const REUSE_MARGIN_SECONDS = 120;

export class Session {
  readonly identity: Identity;
  readonly #options: SessionOptions;
  #current: IssuedToken | undefined;
  #pending: Promise<IssuedToken> | undefined;
  #unavailable = false;

  constructor(options: SessionOptions) {
    this.identity = options.identity;
    this.#options = options;
  }

  /**
   * A token valid for at least two more minutes (fetched at most once at a time). `fresh`: a newly issued one, not
   * the cached one (the cached one was refused, e.g. by a local runtime restarted without its data directory).
   */
  /**
   * The last token request got no answer at all or a 5xx: the network or the server is down (a local stack
   * restarting answers 503 until it is ready), which signing in again would not help.
   */
  get unavailable(): boolean {
    return this.#unavailable;
  }

  async token(fresh = false): Promise<IssuedToken> {
    const nowSeconds = (this.#options.now ?? Date.now)() / 1000;
    const cached = this.#current;
    if (!fresh && cached !== undefined && cached.expiresAt - nowSeconds > REUSE_MARGIN_SECONDS) return cached;
    this.#pending ??= this.#issue()
      .then(
        (issued) => {
          this.#unavailable = false;
          return issued;
        },
        (err: unknown) => {
          this.#unavailable = err instanceof ApiError && (err.status === 0 || err.status >= 500);
          throw err;
        },
      )
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  async #issue(): Promise<IssuedToken> {
    const doFetch = this.#options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    let response: Response;
    try {
      response = await doFetch(`${this.#options.baseUrl ?? ''}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...this.identity, ttlSeconds: this.#options.ttlSeconds ?? 3600 }),
      });
    } catch (err) {
      throw new ApiError('NETWORK', `POST /dev/token: ${String(err)}`, 0);
    }
    const body = (await response.json().catch(() => undefined)) as Partial<IssuedToken> | undefined;
    if (!response.ok) throw errorFromAnswer(response.status, body);
    if (typeof body?.token !== 'string' || typeof body.expiresAt !== 'number') {
      throw new ApiError('INTERNAL', 'the identity provider answered without a token', response.status);
    }
    this.#current = { token: body.token, expiresAt: body.expiresAt };
    return this.#current;
  }
}
