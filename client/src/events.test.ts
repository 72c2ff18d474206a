import { describe, expect, it } from '@jest/globals';
import { createEvents } from './events.ts';

type Events = { state: (state: string, previous: string) => void; error: (error: Error) => void };

describe('createEvents', () => {
  it("calls an event's listeners in the order they were added, with the event's arguments", () => {
    const events = createEvents<Events>();
    const heard: string[] = [];
    events.on('state', (state, previous) => heard.push(`a ${previous}→${state}`));
    events.on('state', (state) => heard.push(`b ${state}`));
    events.on('error', () => heard.push('error'));
    events.emit('state', 'connected', 'connecting');
    expect(heard).toEqual(['a connecting→connected', 'b connected']);
  });

  it('goes on to the other listeners when one throws', () => {
    const events = createEvents<Events>();
    const heard: string[] = [];
    events.on('state', () => {
      throw new Error('app bug');
    });
    events.on('state', (state) => heard.push(state));
    expect(() => events.emit('state', 'connected', 'connecting')).not.toThrow();
    expect(heard).toEqual(['connected']);
  });

  it('stops calling a listener once removed, even during the emit that removes it', () => {
    const events = createEvents<Events>();
    const heard: string[] = [];
    const off = events.on('state', (state) => {
      heard.push(`once ${state}`);
      off();
    });
    events.on('state', (state) => heard.push(state));
    events.emit('state', 'a', 'x');
    events.emit('state', 'b', 'a');
    expect(heard).toEqual(['once a', 'a', 'b']);
  });

  it('emits to nobody without complaint', () => {
    expect(() => createEvents<Events>().emit('error', new Error('x'))).not.toThrow();
  });
});
