/**
 * The esbuild options the package is built with (build.ts) and measured with (size.ts), so the size reported is the
 * size shipped. Apps' bundlers shorten local names but never property names, so this build shortens the property
 * names that never leave the bundle (`mangleProps`): those of the units' own objects (a transport's fields, the
 * requests', outbox's, reconnect's, rollover's and session's members, the units the session is given).
 * A name listed here must not be the name of a property of anything from outside the bundle (the public API and its
 * options, the wire frames, the WebSocket, clock and network ports, built-ins such as `Set#add` or `Promise.resolve`):
 * esbuild renames every property of that name. bundle.test.ts runs the built bundle to check it still works.
 */
import type { BuildOptions } from 'esbuild';

export const INTERNAL_PROPERTIES = [
  // transport.ts: a transport and a request
  'role',
  'open',
  'dead',
  'openedAt',
  'heard',
  'pending',
  'timers',
  'ws',
  'transport',
  'timer',
  'settle',
  'arm',
  'disarm',
  'answer',
  'drop',
  // outbox.ts, subscriptions.ts, dedupe.ts (GroupCursor's private fields)
  'order',
  'take',
  'oldest',
  'publishing',
  'requeue',
  'handlers',
  'handler',
  'cursor',
  'resubscribe',
  'deliver',
  'ids',
  'capacity',
  'deliveredSeq',
  // reconnect.ts, rollover.ts, session.ts
  'opened',
  'later',
  'cancel',
  'delay',
  'check',
  'failed',
  'takeOver',
  'settled',
  'connected',
  'openStandby',
  'activate',
  'start',
  'stop',
  'flush',
  'end',
  'reopen',
  'transports',
  'requests',
  'subscriptions',
  'outbox',
  'reconnect',
  'emit',
];

/** Bundle src/index.ts as one platform-neutral ES2020 module; `write` and minification are the caller's. */
export const bundleOptions = {
  entryPoints: [new URL('src/index.ts', import.meta.url).pathname],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2020',
  mangleProps: new RegExp(`^(${INTERNAL_PROPERTIES.join('|')})$`),
  logLevel: 'warning',
} satisfies BuildOptions;
