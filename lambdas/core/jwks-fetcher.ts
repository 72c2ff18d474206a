/**
 * A JWKS fetcher for aws-jwt-verify built on the global `fetch`: works for http and https issuers alike
 * (aws-jwt-verify's default fetcher speaks https only, which rules out local and in-VPC identity providers).
 */

import { FetchError, NonRetryableFetchError } from 'aws-jwt-verify/error';
import type { Fetcher } from 'aws-jwt-verify/https';

export interface FetchJwksFetcherOptions {
  /** @default 3000 */
  readonly timeoutMs?: number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
}

export class FetchJwksFetcher implements Fetcher {
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(options: FetchJwksFetcherOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  async fetch(uri: string): Promise<ArrayBuffer> {
    let response: Response;
    try {
      response = await this.fetchImpl(uri, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new FetchError(uri, err instanceof Error ? err.message : String(err));
    }
    if (response.status !== 200) {
      throw new NonRetryableFetchError(uri, `status code is ${response.status}, expected 200`);
    }
    return response.arrayBuffer();
  }
}
