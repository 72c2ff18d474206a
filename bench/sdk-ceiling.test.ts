import { describe, expect, it } from '@jest/globals';
import { measureSdkCeiling } from './sdk-ceiling.ts';

describe('the SDK ceiling measurement', () => {
  it('posts with the AWS SDK to a bare server in another process and reads a page of members through it', async () => {
    const c = await measureSdkCeiling({ calls: 30, inFlight: 4, pageSize: 5, pages: 2 });
    expect(c).toMatchObject({ calls: 30, inFlight: 4, pageSize: 5 });
    expect(c.postsPerSecond).toBeGreaterThan(0);
    expect(c.cpuMicrosPerPost).toBeGreaterThan(0);
    expect(c.cpuMicrosPerPageQuery).toBeGreaterThan(0);
  });
});
