import { describe, expect, it } from '@jest/globals';
import type { TenantcastClientError } from './errors.ts';
import { errorFrom, onFrame } from './frames.ts';
import { collect, connect, message, reconnect, setup } from './testing.ts';
import type { Transport } from './transport.ts';
import type { Message } from './types.ts';

function setupFrames() {
  const t = { dead: false } as Transport;
  const delivered: Message[] = [];
  const answered: { ref: string | undefined; outcome: unknown }[] = [];
  const errors: TenantcastClientError[] = [];
  const receive = (raw: unknown) =>
    onFrame(
      t,
      raw,
      { deliver: (m) => delivered.push(m), reset: () => undefined },
      { answer: (_t, ref, outcome) => ref === 'known' && answered.push({ ref, outcome }) > 0 },
      (error) => errors.push(error),
    );
  return { t, delivered, answered, errors, receive };
}

describe('onFrame', () => {
  it('settles the request an error names with it', () => {
    const h = setupFrames();
    h.receive(JSON.stringify({ type: 'error', ref: 'known', code: 'FORBIDDEN', message: 'no' }));
    expect(h.answered).toMatchObject([{ ref: 'known', outcome: { type: 'error', code: 'FORBIDDEN' } }]);
    expect(h.errors).toEqual([]);
  });

  it('reports an error naming an unknown request', () => {
    const h = setupFrames();
    h.receive(JSON.stringify({ type: 'error', ref: 'gone', code: 'FORBIDDEN', message: 'no' }));
    expect(h.answered).toEqual([]);
    expect(h.errors.map((e) => e.code)).toEqual(['FORBIDDEN']);
  });

  it("reports API Gateway's own message frames as INTERNAL, and ignores unknown types and non-objects", () => {
    const h = setupFrames();
    h.receive(JSON.stringify({ message: 'Forbidden', connectionId: 'x' }));
    h.receive(JSON.stringify({ type: 'future-thing' }));
    h.receive('42');
    h.receive('null');
    expect(h.errors.map((e) => [e.code, e.message])).toEqual([['INTERNAL', 'Forbidden']]);
  });

  it('ignores frames arriving on a socket already torn down', () => {
    const h = setupFrames();
    h.t.dead = true;
    h.receive(JSON.stringify({ type: 'message', group: 'g', id: 'a', data: 1 }));
    h.receive('not json');
    expect(h.delivered).toEqual([]);
    expect(h.errors).toEqual([]);
  });

  it('turns an error frame without a string code into INTERNAL', () => {
    expect(errorFrom({ code: 5 })).toMatchObject({ code: 'INTERNAL', message: 'INTERNAL' });
  });
});

describe('server frames', () => {
  it('of type batch are unpacked into their messages, in order and deduplicated', async () => {
    const h = setup();
    const socket = await connect(h);
    const { seen } = collect(h, 'chat:general');
    socket.receive(message('chat:general', 1));
    socket.receive({
      type: 'batch',
      messages: [message('chat:general', 1), message('chat:general', 2), message('chat:general', 3)],
    });
    expect(seen.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it('of type reset are surfaced to the app, and the group resumes from the reset position', async () => {
    const h = setup();
    const socket = await connect(h);
    collect(h, 'chat:general');
    socket.receive(message('chat:general', 3));
    socket.receive({ type: 'reset', group: 'chat:general', reason: 'HISTORY_EXPIRED', seq: 900 });
    expect(h.resets).toEqual([{ group: 'chat:general', reason: 'HISTORY_EXPIRED', seq: 900 }]);
    socket.drop();
    const next = await reconnect(h, socket);
    expect(next.lastOf('subscribe')).toMatchObject({ since: 900 });
  });

  it('of type error without a ref are reported, and the reconnect after the close uses a fresh token', async () => {
    const h = setup();
    const socket = await connect(h);
    socket.receive({ type: 'error', code: 'UNAUTHORIZED', message: 'token expired' });
    expect(h.errors).toEqual([expect.objectContaining({ code: 'UNAUTHORIZED', message: 'token expired' })]);
    socket.drop(1008);
    const next = await reconnect(h, socket);
    expect(next.token).toBe('token-2');
  });

  it('that are not JSON are reported as PROTOCOL errors without closing the connection', async () => {
    const h = setup();
    const socket = await connect(h);
    socket.receive('{oops');
    expect(h.errors.map((e) => e.code)).toEqual(['PROTOCOL']);
    expect(socket.closed).toBe(false);
  });
});
