/**
 * The receiving clients' process (forked by bench/remote-receivers.ts): opens the sockets, subscribes them when asked,
 * records epoch-clock latencies, streams progress counts to the parent and hands over all samples on `collect`.
 */
import WebSocket from 'ws';
import { closeAll, createRecorder, forEachParallel, openReceivers, request } from './clients.ts';
import type { FromReceivers, ToReceivers } from './remote-receivers.ts';

const recorder = createRecorder();
let sockets: WebSocket[] = [];
let epoch = 0;

function send(message: FromReceivers) {
  process.send?.(message);
}

function counts() {
  const { received, frames, duplicates, firstAt, lastAt } = recorder;
  return { epoch, received, frames, duplicates, firstAt, lastAt };
}

const progress = setInterval(() => send({ type: 'progress', ...counts() }), 100);

async function open(message: Extract<ToReceivers, { type: 'open' }>) {
  sockets = await openReceivers(
    message.protocols.length,
    (i) => {
      const protocols = message.protocols[i] ?? [];
      return protocols.length > 0 ? new WebSocket(message.url, protocols) : new WebSocket(message.url);
    },
    recorder,
    message.parallel,
  );
  const { group } = message;
  if (group !== undefined) {
    await forEachParallel(sockets, 50, async (ws) => {
      const answer = await request(ws, { action: 'subscribe', group });
      if (answer.type !== 'ack') throw new Error(`subscribe failed: ${JSON.stringify(answer)}`);
    });
  }
  send({ type: 'ready', count: sockets.length });
}

process.on('message', (message: ToReceivers) => {
  switch (message.type) {
    case 'open':
      open(message).catch((error: unknown) => send({ type: 'error', message: String(error) }));
      break;
    case 'reset':
      Object.assign(recorder, createRecorder());
      epoch = message.epoch;
      send({ type: 'reset-done', epoch });
      break;
    case 'collect':
      send({ type: 'collected', samples: Float64Array.from(recorder.samples), ...counts() });
      break;
    case 'close':
      clearInterval(progress);
      closeAll(sockets).then(() => process.exit(0));
      break;
  }
});

process.on('disconnect', () => process.exit(0));
