import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, parseConfig } from '../../lib/config.ts';
import { cdkJsonContext, newApp } from './support.ts';

const validStage = {
  regions: ['eu-west-1'],
  auth: {
    issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE',
    audience: 'client-id',
    jwksUri: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE/.well-known/jwks.json',
  },
};

function problemsOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('the cdk.json configuration', () => {
  const config = parseConfig(cdkJsonContext.tenantcast);
  const stage = (name: string) => config.stages.find((s) => s.name === name);

  it('has dev in one region and prod in two', () => {
    expect(stage('dev')?.regions).toHaveLength(1);
    expect(stage('prod')?.regions).toEqual(['eu-west-1', 'us-east-1']);
  });

  it('destroys dev data but retains and protects prod data', () => {
    expect(stage('dev')).toMatchObject({ removalPolicy: 'destroy', deletionProtection: false });
    expect(stage('prod')).toMatchObject({ removalPolicy: 'retain', deletionProtection: true });
  });

  it('gives every stage https JWT settings with the default claim names', () => {
    for (const s of config.stages) {
      expect(s.auth.issuer).toMatch(/^https:\/\//);
      expect(s.auth.jwksUri).toMatch(/^https:\/\//);
      expect(s.auth.claims).toEqual({ tenant: 'tenant_id', user: 'sub', roles: 'roles' });
    }
  });
});

describe('a stage', () => {
  it('defaults to INFO logs, 30 days of retention, retained and protected data and default throttling', () => {
    const [stage] = parseConfig({ stages: { qa: validStage } }).stages;
    expect(stage).toMatchObject({
      name: 'qa',
      logLevel: 'INFO',
      logRetentionDays: 30,
      removalPolicy: 'retain',
      deletionProtection: true,
      throttle: { rateLimit: 500, burstLimit: 1000 },
      auth: { claims: { tenant: 'tenant_id', user: 'sub', roles: 'roles' } },
    });
  });

  it('may rename claims', () => {
    const [stage] = parseConfig({
      stages: { qa: { ...validStage, auth: { ...validStage.auth, claims: { tenant: 'custom:tenant' } } } },
    }).stages;
    expect(stage?.auth.claims).toEqual({ tenant: 'custom:tenant', user: 'sub', roles: 'roles' });
  });
});

describe('an invalid configuration is rejected, saying what was given', () => {
  it('when a stage has no regions', () => {
    expect(problemsOf({ stages: { prod: { ...validStage, regions: [] } } })).toEqual([
      "stage 'prod' has no regions (got [])",
    ]);
  });

  it('when a region is not a region name', () => {
    expect(problemsOf({ stages: { dev: { ...validStage, regions: ['eu-west-1', 'Ireland'] } } })).toEqual([
      `stage 'dev' has an invalid region "Ireland" (expected e.g. "eu-west-1")`,
    ]);
  });

  it('when auth is missing or not https', () => {
    expect(problemsOf({ stages: { dev: { regions: ['eu-west-1'] } } })).toEqual([
      "stage 'dev' has no auth settings {issuer, audience, jwksUri} (got nothing)",
    ]);
    expect(
      problemsOf({
        stages: { dev: { ...validStage, auth: { ...validStage.auth, issuer: 'http://idp.example.com' } } },
      }),
    ).toEqual([`stage 'dev': auth.issuer must be an https URL (got "http://idp.example.com")`]);
  });

  it('when a log level, retention or removal policy is unknown', () => {
    expect(
      problemsOf({
        stages: { dev: { ...validStage, logLevel: 'VERBOSE', logRetentionDays: 10, removalPolicy: 'keep' } },
      }),
    ).toEqual([
      `stage 'dev': logLevel must be one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT (got "VERBOSE")`,
      expect.stringContaining(`stage 'dev': logRetentionDays must be one of 1, 3, 5, 7, 14, 30`),
      `stage 'dev': removalPolicy must be "retain" or "destroy" (got "keep")`,
    ]);
  });

  it('when a field is misspelt', () => {
    expect(problemsOf({ stages: { dev: { ...validStage, region: ['eu-west-1'] } } })).toEqual([
      expect.stringContaining(`stage 'dev' has an unknown field 'region' (known: regions,`),
    ]);
  });

  it('when throttling is not positive', () => {
    expect(problemsOf({ stages: { dev: { ...validStage, throttle: { rateLimit: 0, burstLimit: 1.5 } } } })).toEqual([
      `stage 'dev': throttle.rateLimit must be a positive number (got 0)`,
      `stage 'dev': throttle.burstLimit must be a positive integer (got 1.5)`,
    ]);
  });

  it('when there are no stages at all', () => {
    expect(problemsOf(undefined)).toEqual(["expected an object with 'stages' (got nothing)"]);
    expect(problemsOf({ stages: {} })).toEqual([
      "'stages' must map stage names to settings, with at least one stage (got {})",
    ]);
  });

  it('listing the problems of every stage in one error', () => {
    expect(() => parseConfig({ stages: { dev: { ...validStage, regions: [] }, prod: {} } })).toThrow(
      /stage 'dev' has no regions \(got \[\]\)\n {2}- stage 'prod' has no regions \(got nothing\)/,
    );
  });
});

describe('the tenant clusters of a stage', () => {
  it('are two in dev and three in prod, as cdk.json says', () => {
    const config = parseConfig(cdkJsonContext.tenantcast);
    expect(config.stages.map((s) => [s.name, s.clusters.count])).toEqual([
      ['dev', 2],
      ['prod', 3],
    ]);
  });

  it('default to two small clusters with a week of backups', () => {
    const [stage] = parseConfig({ stages: { qa: validStage } }).stages;
    expect(stage?.clusters).toEqual({ count: 2, minCapacity: 0.5, maxCapacity: 4, backupRetentionDays: 7 });
  });

  it('are rejected when count, capacity or backups are out of range, saying what was given', () => {
    expect(
      problemsOf({
        stages: {
          dev: { ...validStage, clusters: { count: 0, minCapacity: 0.25, maxCapacity: 300, backupRetentionDays: 40 } },
        },
      }),
    ).toEqual([
      `stage 'dev': clusters.count must be an integer from 1 to 26 (got 0)`,
      `stage 'dev': clusters.minCapacity must be 0 to 256 ACUs in steps of 0.5 (got 0.25)`,
      `stage 'dev': clusters.maxCapacity must be 1 to 256 ACUs in steps of 0.5 (got 300)`,
      `stage 'dev': clusters.backupRetentionDays must be an integer from 1 to 35 (got 40)`,
    ]);
  });

  it('are rejected when the maximum capacity is below the minimum', () => {
    expect(problemsOf({ stages: { dev: { ...validStage, clusters: { minCapacity: 8, maxCapacity: 2 } } } })).toEqual([
      `stage 'dev': clusters.maxCapacity (2) must be at least clusters.minCapacity (8)`,
    ]);
  });
});

describe('CORS of the HTTP API', () => {
  it('allows the WebSocket origins unless a stage lists its own', () => {
    const withOrigins = { ...validStage, auth: { ...validStage.auth, allowedOrigins: ['https://app.example.com'] } };
    expect(parseConfig({ stages: { qa: withOrigins } }).stages[0]?.cors.allowedOrigins).toEqual([
      'https://app.example.com',
    ]);
    const own = { ...withOrigins, cors: { allowedOrigins: ['https://admin.example.com'] } };
    expect(parseConfig({ stages: { qa: own } }).stages[0]?.cors.allowedOrigins).toEqual(['https://admin.example.com']);
  });

  it('refuses an origin with a path, saying what was given', () => {
    expect(
      problemsOf({ stages: { dev: { ...validStage, cors: { allowedOrigins: ['https://a.example.com/x'] } } } }),
    ).toEqual([
      `stage 'dev': cors.allowedOrigins must be a non-empty list of lower-case origins such as "https://app.example.com", "https://*" or "*" (got ["https://a.example.com/x"])`,
    ]);
  });

  it('refuses an origin in upper case on either list, which API Gateway and the authorizer could read two ways', () => {
    const upper = { ...validStage, auth: { ...validStage.auth, allowedOrigins: ['https://App.example.com'] } };
    expect(problemsOf({ stages: { dev: upper } }).join('\n')).toContain(
      'auth.allowedOrigins must be a list of lower-case',
    );
    const scheme = { ...validStage, cors: { allowedOrigins: ['https://*'] } };
    expect(parseConfig({ stages: { qa: scheme } }).stages[0]?.cors.allowedOrigins).toEqual(['https://*']);
  });
});

describe('selecting a stage with -c stage=NAME', () => {
  it('keeps only that stage', () => {
    expect(loadConfig(newApp({ context: { stage: 'dev' } }).node).stages.map((s) => s.name)).toEqual(['dev']);
  });

  it('rejects a stage that does not exist, listing the known ones', () => {
    expect(() => loadConfig(newApp({ context: { stage: 'qa' } }).node)).toThrow(
      '-c stage=qa names no stage (known: dev, prod)',
    );
  });
});
