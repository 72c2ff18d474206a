import { describe, expect, it, jest } from '@jest/globals';

describe('startWithChromium without Chromium', () => {
  it('hands over the runtime it started, so the file can stop it, and then fails', async () => {
    const before = process.env.CHROMIUM_PATH;
    process.env.CHROMIUM_PATH = '/nonexistent/chromium';
    try {
      // support.ts reads CHROMIUM_PATH when it loads.
      const { startWithChromium } = await import('./support.ts');
      const keep = jest.fn();
      await expect(startWithChromium(async () => 'runtime', keep)).rejects.toThrow('Chromium not found');
      expect(keep).toHaveBeenCalledWith('runtime', undefined);
    } finally {
      if (before === undefined) delete process.env.CHROMIUM_PATH;
      else process.env.CHROMIUM_PATH = before;
    }
  });
});
