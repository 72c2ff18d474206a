/**
 * Deployment configuration: which stages exist, in which regions, and what each stage needs.
 *
 * It lives in cdk.json under the context key `tenantcast` (see {@link CONFIG_CONTEXT_KEY}) and is validated here,
 * so a typo fails `cdk synth` with a message naming the stage, the field and the value given.
 */
import type { Node } from 'constructs';

/** The context key in cdk.json holding the {@link RawConfig}. */
export const CONFIG_CONTEXT_KEY = 'tenantcast';

/** The context key selecting a single stage: `cdk synth -c stage=dev`. */
export const STAGE_CONTEXT_KEY = 'stage';

/** Log levels the Powertools logger understands (`LOG_LEVEL`). */
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Claim names the authorizer reads from the verified JWT. */
export interface ClaimNames {
  /** Claim holding the tenant id (`CLAIM_TENANT`). */
  readonly tenant: string;
  /** Claim holding the user id (`CLAIM_USER`). */
  readonly user: string;
  /** Claim holding the user's roles (`CLAIM_ROLES`). */
  readonly roles: string;
}

export const DEFAULT_CLAIM_NAMES: ClaimNames = { tenant: 'tenant_id', user: 'sub', roles: 'roles' };

/** How the `$connect` authorizer verifies tokens. */
export interface AuthConfig {
  /** Expected `iss` of the JWT (`JWT_ISSUER`), an https URL. */
  readonly issuer: string;
  /** Expected `aud` (or Cognito `client_id`) of the JWT (`JWT_AUDIENCE`). */
  readonly audience: string;
  /** Where the signing keys are published (`JWKS_URI`), an https URL. */
  readonly jwksUri: string;
  readonly claims: ClaimNames;
}

/** Steady-state and burst request limits applied to every route of the stage. */
export interface ThrottleConfig {
  /** Requests per second. */
  readonly rateLimit: number;
  /** Requests allowed in a burst. */
  readonly burstLimit: number;
}

export const DEFAULT_THROTTLE: ThrottleConfig = { rateLimit: 500, burstLimit: 1000 };

/** One validated stage. */
export interface StageConfig {
  /** Stage name; also the WebSocket API stage name and part of every stack name. */
  readonly name: string;
  /** Regions the stage is deployed to, one stack each. */
  readonly regions: readonly string[];
  /** Account to deploy to; undefined means the CLI's current account (`CDK_DEFAULT_ACCOUNT`). */
  readonly account?: string;
  readonly logLevel: LogLevel;
  /** Days Lambda logs are kept. */
  readonly logRetentionDays: number;
  /** What happens to stateful resources (the table, log groups) when the stack is deleted. */
  readonly removalPolicy: 'retain' | 'destroy';
  /** DynamoDB deletion protection on the table. */
  readonly deletionProtection: boolean;
  readonly throttle: ThrottleConfig;
  readonly auth: AuthConfig;
}

export interface TenantcastConfig {
  readonly stages: readonly StageConfig[];
}

/** Thrown when the configuration is invalid; the message lists every problem found. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `invalid tenantcast configuration (context '${CONFIG_CONTEXT_KEY}' in cdk.json):\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'ConfigError';
  }
}

const STAGE_NAME = /^[a-z][a-z0-9-]{0,19}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;
const ACCOUNT = /^\d{12}$/;
const CLAIM_NAME = /^[A-Za-z0-9_:./-]+$/;

/** Log retention values CloudWatch Logs accepts. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const STAGE_FIELDS = [
  'regions',
  'account',
  'logLevel',
  'logRetentionDays',
  'removalPolicy',
  'deletionProtection',
  'throttle',
  'auth',
];

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isHttpsUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}

/** Validates one stage, pushing messages for what is wrong; returns the stage when nothing is. */
function parseStage(name: string, raw: unknown, problems: string[]): StageConfig | undefined {
  const before = problems.length;
  const where = `stage '${name}'`;
  if (!STAGE_NAME.test(name)) {
    problems.push(
      `${where}: the name must be lower-case letters, digits and '-', start with a letter, at most 20 characters`,
    );
  }
  if (!isRecord(raw)) {
    problems.push(`${where} must be an object (got ${show(raw)})`);
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!STAGE_FIELDS.includes(key)) {
      problems.push(`${where} has an unknown field '${key}' (known: ${STAGE_FIELDS.join(', ')})`);
    }
  }

  const regions = raw.regions;
  if (!Array.isArray(regions) || regions.length === 0) {
    problems.push(`${where} has no regions (got ${show(regions)})`);
  } else {
    for (const region of regions) {
      if (typeof region !== 'string' || !REGION.test(region)) {
        problems.push(`${where} has an invalid region ${show(region)} (expected e.g. "eu-west-1")`);
      }
    }
    const duplicates = regions.filter((r, i) => regions.indexOf(r) !== i);
    if (duplicates.length > 0) problems.push(`${where} lists region(s) twice: ${show(duplicates)}`);
  }

  const account = raw.account;
  if (account !== undefined && (typeof account !== 'string' || !ACCOUNT.test(account))) {
    problems.push(`${where}: account must be a 12-digit string (got ${show(account)})`);
  }

  const logLevel = raw.logLevel ?? 'INFO';
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    problems.push(`${where}: logLevel must be one of ${LOG_LEVELS.join(', ')} (got ${show(logLevel)})`);
  }

  const logRetentionDays = raw.logRetentionDays ?? 30;
  if (typeof logRetentionDays !== 'number' || !LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    problems.push(
      `${where}: logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(', ')} (got ${show(logRetentionDays)})`,
    );
  }

  const removalPolicy = raw.removalPolicy ?? 'retain';
  if (removalPolicy !== 'retain' && removalPolicy !== 'destroy') {
    problems.push(`${where}: removalPolicy must be "retain" or "destroy" (got ${show(removalPolicy)})`);
  }

  const deletionProtection = raw.deletionProtection ?? removalPolicy === 'retain';
  if (typeof deletionProtection !== 'boolean') {
    problems.push(`${where}: deletionProtection must be true or false (got ${show(deletionProtection)})`);
  }

  const throttle = parseThrottle(where, raw.throttle, problems);
  const auth = parseAuth(where, raw.auth, problems);

  if (problems.length > before || throttle === undefined || auth === undefined) return undefined;
  return {
    name,
    regions: regions as string[],
    ...(account === undefined ? {} : { account: account as string }),
    logLevel: logLevel as LogLevel,
    logRetentionDays: logRetentionDays as number,
    removalPolicy: removalPolicy as 'retain' | 'destroy',
    deletionProtection: deletionProtection as boolean,
    throttle,
    auth,
  };
}

function parseThrottle(where: string, raw: unknown, problems: string[]): ThrottleConfig | undefined {
  if (raw === undefined) return DEFAULT_THROTTLE;
  if (!isRecord(raw)) {
    problems.push(`${where}: throttle must be an object {rateLimit, burstLimit} (got ${show(raw)})`);
    return undefined;
  }
  const rateLimit = raw.rateLimit ?? DEFAULT_THROTTLE.rateLimit;
  const burstLimit = raw.burstLimit ?? DEFAULT_THROTTLE.burstLimit;
  let ok = true;
  if (typeof rateLimit !== 'number' || !Number.isFinite(rateLimit) || rateLimit <= 0) {
    problems.push(`${where}: throttle.rateLimit must be a positive number (got ${show(rateLimit)})`);
    ok = false;
  }
  if (typeof burstLimit !== 'number' || !Number.isInteger(burstLimit) || burstLimit <= 0) {
    problems.push(`${where}: throttle.burstLimit must be a positive integer (got ${show(burstLimit)})`);
    ok = false;
  }
  return ok ? { rateLimit: rateLimit as number, burstLimit: burstLimit as number } : undefined;
}

function parseAuth(where: string, raw: unknown, problems: string[]): AuthConfig | undefined {
  if (!isRecord(raw)) {
    problems.push(`${where} has no auth settings {issuer, audience, jwksUri} (got ${show(raw)})`);
    return undefined;
  }
  let ok = true;
  if (!isHttpsUrl(raw.issuer)) {
    problems.push(`${where}: auth.issuer must be an https URL (got ${show(raw.issuer)})`);
    ok = false;
  }
  if (typeof raw.audience !== 'string' || raw.audience.trim() === '') {
    problems.push(`${where}: auth.audience must be a non-empty string (got ${show(raw.audience)})`);
    ok = false;
  }
  if (!isHttpsUrl(raw.jwksUri)) {
    problems.push(`${where}: auth.jwksUri must be an https URL (got ${show(raw.jwksUri)})`);
    ok = false;
  }
  const claimsRaw = raw.claims ?? {};
  if (!isRecord(claimsRaw)) {
    problems.push(`${where}: auth.claims must be an object {tenant, user, roles} (got ${show(claimsRaw)})`);
    return undefined;
  }
  const claims = { ...DEFAULT_CLAIM_NAMES };
  for (const key of Object.keys(claimsRaw)) {
    if (!(key in DEFAULT_CLAIM_NAMES)) {
      problems.push(`${where}: auth.claims has an unknown field '${key}' (known: tenant, user, roles)`);
      ok = false;
      continue;
    }
    const value = claimsRaw[key];
    if (typeof value !== 'string' || !CLAIM_NAME.test(value)) {
      problems.push(`${where}: auth.claims.${key} must be a claim name such as "tenant_id" (got ${show(value)})`);
      ok = false;
      continue;
    }
    claims[key as keyof ClaimNames] = value;
  }
  if (!ok) return undefined;
  return { issuer: raw.issuer as string, audience: raw.audience as string, jwksUri: raw.jwksUri as string, claims };
}

/**
 * Validates the raw `tenantcast` context value.
 *
 * @throws ConfigError listing every problem, each naming the stage, the field and the value given.
 */
export function parseConfig(raw: unknown): TenantcastConfig {
  if (!isRecord(raw)) {
    throw new ConfigError([`expected an object with 'stages' (got ${show(raw)})`]);
  }
  if (!isRecord(raw.stages) || Object.keys(raw.stages).length === 0) {
    throw new ConfigError([
      `'stages' must map stage names to settings, with at least one stage (got ${show(raw.stages)})`,
    ]);
  }
  const problems: string[] = [];
  const stages: StageConfig[] = [];
  for (const [name, value] of Object.entries(raw.stages)) {
    const stage = parseStage(name, value, problems);
    if (stage) stages.push(stage);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { stages };
}

/**
 * Reads and validates the configuration from a construct tree's context (cdk.json, `-c` flags), narrowed to the
 * stage named by `-c stage=NAME` when given.
 *
 * @throws ConfigError when the configuration is invalid or the selected stage does not exist.
 */
export function loadConfig(node: Node): TenantcastConfig {
  const config = parseConfig(node.tryGetContext(CONFIG_CONTEXT_KEY));
  const selected: unknown = node.tryGetContext(STAGE_CONTEXT_KEY);
  if (selected === undefined) return config;
  const stage = config.stages.find((s) => s.name === selected);
  if (!stage) {
    const known = config.stages.map((s) => s.name).join(', ');
    throw new ConfigError([`-c ${STAGE_CONTEXT_KEY}=${String(selected)} names no stage (known: ${known})`]);
  }
  return { stages: [stage] };
}

/** The stack name for a stage in a region, e.g. `tenantcast-dev-eu-west-1`. */
export function stackNameOf(stage: Pick<StageConfig, 'name'>, region: string): string {
  return `tenantcast-${stage.name}-${region}`;
}
