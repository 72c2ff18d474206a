/**
 * The error banners' state: an error stays until the user dismisses it or the action that failed succeeds (the same
 * `action`, e.g. `save:task/<id>` or `load:task`); no timer. At most `max` are kept, newest first; the same error
 * again (same action, code and message) moves to the top instead of being listed twice.
 */
export interface Banner {
  readonly id: number;
  readonly code: string;
  readonly message: string;
  /** What failed; a later success of it clears the banner. Undefined: only the user clears it. */
  readonly action?: string;
}

export class ErrorBanners {
  #items: Banner[] = [];
  #nextId = 1;

  constructor(private readonly max = 5) {}

  get items(): readonly Banner[] {
    return this.#items;
  }

  add(code: string, message: string, action?: string): Banner {
    const banner: Banner = { id: this.#nextId++, code, message, ...(action !== undefined && { action }) };
    const same = (b: Banner) => b.code === code && b.message === message && b.action === action;
    this.#items = [banner, ...this.#items.filter((b) => !same(b))].slice(0, this.max);
    return banner;
  }

  dismiss(id: number): void {
    this.#items = this.#items.filter((b) => b.id !== id);
  }

  /** Every banner goes (the user signed out: the errors were the previous session's). */
  clear(): void {
    this.#items = [];
  }

  /** The action worked this time: its banners go. */
  succeeded(action: string): void {
    this.#items = this.#items.filter((b) => b.action !== action);
  }
}

/** An error the client SDK reports: its code, message and the group it is about. */
export interface ClientErrorLike {
  readonly code: string;
  readonly message: string;
  readonly group?: string;
}

/**
 * What the page shows for an error of the connection. The client SDK reports any getToken failure as UNAUTHORIZED
 * (docs/client.md); while the token request gets no answer or a 5xx (`tokenUnavailable`), that is the network's or
 * the server's outage, shown as UNAVAILABLE: signing in again would not help.
 */
export function connectionError(error: ClientErrorLike, tokenUnavailable: boolean): { code: string; message: string } {
  if (error.code === 'UNAUTHORIZED' && tokenUnavailable) {
    return { code: 'UNAVAILABLE', message: 'the server is not answering: retrying' };
  }
  return { code: error.code, message: error.group ? `${error.message} (${error.group})` : error.message };
}
