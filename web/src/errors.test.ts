import { describe, expect, it } from '@jest/globals';
import { connectionError, ErrorBanners } from './errors.ts';

describe('ErrorBanners', () => {
  it('keeps an error until the user dismisses it (no timer)', () => {
    const banners = new ErrorBanners();
    const banner = banners.add('FORBIDDEN', 'no write right', 'save:task/t1');
    banners.add('NETWORK', 'no answer');
    expect(banners.items.map((b) => b.code)).toEqual(['NETWORK', 'FORBIDDEN']);
    banners.dismiss(banner.id);
    expect(banners.items.map((b) => b.code)).toEqual(['NETWORK']);
  });

  it('clears every error at once (a sign-out)', () => {
    const banners = new ErrorBanners();
    banners.add('FORBIDDEN', 'no', 'load:schema');
    banners.add('INTERNAL', 'boom');
    banners.clear();
    expect(banners.items).toEqual([]);
  });

  it('clears the errors of an action when the same action succeeds, and only those', () => {
    const banners = new ErrorBanners();
    banners.add('NETWORK', 'no answer', 'load:task');
    banners.add('CONFLICT', 'stale', 'save:task/t1');
    banners.succeeded('load:task');
    expect(banners.items.map((b) => b.action)).toEqual(['save:task/t1']);
  });

  it('lists the same error once, newest first, and keeps at most five', () => {
    const banners = new ErrorBanners();
    for (let i = 0; i < 7; i++) banners.add('INTERNAL', `boom ${i}`);
    banners.add('INTERNAL', 'boom 3');
    expect(banners.items.map((b) => b.message)).toEqual(['boom 3', 'boom 6', 'boom 5', 'boom 4', 'boom 2']);
  });
});

describe('a connection error as the page shows it', () => {
  const getTokenFailed = { code: 'UNAUTHORIZED', message: 'getToken failed: ApiError: POST /dev/token: TypeError' };

  it('is an outage when the token request got no answer or a 5xx, not a sign-in problem', () => {
    expect(connectionError(getTokenFailed, true)).toEqual({
      code: 'UNAVAILABLE',
      message: 'the server is not answering: retrying',
    });
  });

  it('keeps its own code otherwise, naming the group it is about', () => {
    expect(connectionError(getTokenFailed, false)).toEqual(getTokenFailed);
    expect(connectionError({ code: 'FORBIDDEN', message: 'no', group: 'entity:task' }, true)).toEqual({
      code: 'FORBIDDEN',
      message: 'no (entity:task)',
    });
  });
});
