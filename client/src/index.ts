export { type BackoffOptions, backoffCeiling, backoffDelay } from './backoff.ts';
export {
  browserNetwork,
  type ClientEvents,
  type ClientOptions,
  createClient,
  type Subscription,
  type TenantcastClient,
  tokenExpiry,
} from './client.ts';
export { GroupCursor } from './dedupe.ts';
export { TenantcastClientError } from './errors.ts';
export type * from './types.ts';
