/**
 * Deployment configuration: which stages exist, in which regions, and what each stage needs.
 *
 * It lives in cdk.json under the context key `tenantcast` (see {@link CONFIG_CONTEXT_KEY}) and is validated here,
 * so a typo fails `cdk synth` with a message naming the stage, the field and the value given.
 */
import type { Node } from 'constructs';
import { ORIGIN_ENTRY } from './http-api-cors.ts';

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
  /**
   * Expected `aud` of the JWT (`JWT_AUDIENCE`), on both transports: a token without `aud` (a Cognito access token, whose
   * `client_id` API Gateway's HTTP authorizer would take instead) is refused (docs/security.md, "Claims over HTTP").
   */
  readonly audience: string;
  /** Where the signing keys are published (`JWKS_URI`), an https URL. */
  readonly jwksUri: string;
  readonly claims: ClaimNames;
  /**
   * Browser origins allowed to open a WebSocket (the handshake's `Origin`), e.g. `https://app.example.com`;
   * `*` allows any. Checked by the `$connect` authorizer (docs/security.md). @default ['*']
   */
  readonly allowedOrigins: readonly string[];
  /** Whether a handshake without an `Origin` header (server and native clients) is accepted. @default true */
  readonly allowMissingOrigin: boolean;
}

/** Steady-state and burst request limits applied to every route of the stage. */
export interface ThrottleConfig {
  /** Requests per second. */
  readonly rateLimit: number;
  /** Requests allowed in a burst. */
  readonly burstLimit: number;
}

export const DEFAULT_THROTTLE: ThrottleConfig = { rateLimit: 500, burstLimit: 1000 };

/** The Aurora Serverless v2 PostgreSQL clusters holding the stage's tenant databases (the data stack, docs/tenants.md). */
export interface ClustersConfig {
  /** How many clusters tenants are spread over: 1 to 26, with ids `cluster-a` to `cluster-z`. */
  readonly count: number;
  /** Least Aurora capacity units of each cluster's writer: 0 to 256 in steps of 0.5 (0 lets an idle cluster pause). */
  readonly minCapacity: number;
  /** Most Aurora capacity units of each cluster's writer: 1 to 256 in steps of 0.5, at least `minCapacity`. */
  readonly maxCapacity: number;
  /** Days automated backups are kept: 1 to 35. */
  readonly backupRetentionDays: number;
}

export const DEFAULT_CLUSTERS: ClustersConfig = { count: 2, minCapacity: 0.5, maxCapacity: 4, backupRetentionDays: 7 };

/** Cross-origin requests the HTTP API answers (preflight and CORS headers). */
export interface CorsConfig {
  /** Browser origins allowed to call the HTTP API, e.g. `https://app.example.com`; `*` allows any. */
  readonly allowedOrigins: readonly string[];
}

/** Where a stage's alarms go and when they fire (lib/operations.ts, docs/operations.md). */
export interface AlarmsConfig {
  /**
   * Existing SNS topics to notify, by region (CloudWatch alarms publish to topics of their own region only); in cdk.json
   * either one ARN (single-region stages) or an object `{region: arn}` covering every region of the stage.
   * @default - each stack creates an encrypted topic
   */
  readonly topicArns?: Readonly<Record<string, string>>;
  /** Email addresses subscribed to the topic the stack creates (not with `topicArn`). @default [] */
  readonly emails: readonly string[];
  /** Percentage of a function's invocations failing in 5 minutes that raises its error-rate alarm. */
  readonly errorRatePercent: number;
  /** p99 delivery latency (ms) that, for 15 minutes, raises the latency alarm. */
  readonly deliveryLatencyP99Ms: number;
}

export const DEFAULT_ALARMS: AlarmsConfig = { emails: [], errorRatePercent: 5, deliveryLatencyP99Ms: 1000 };

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
  /** The tenant database clusters. @default DEFAULT_CLUSTERS */
  readonly clusters: ClustersConfig;
  /** CORS of the HTTP API. @default - the WebSocket's `auth.allowedOrigins` */
  readonly cors: CorsConfig;
  /**
   * Whether the stack sets the region's API Gateway account settings to a CloudWatch Logs role it creates
   * (`AWS::ApiGateway::Account`), which WebSocket API access logging needs. The setting is one per account and
   * region: when several stages share an account and region, let exactly one of them manage it. @default true
   */
  readonly apiGatewayCloudWatchRole: boolean;
  /** Alarm routing and thresholds. @default DEFAULT_ALARMS */
  readonly alarms: AlarmsConfig;
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
  'clusters',
  'cors',
  'apiGatewayCloudWatchRole',
  'alarms',
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
  const clusters = parseClusters(where, raw.clusters, problems);
  const cors = parseCors(where, raw.cors, auth?.allowedOrigins ?? ['*'], problems);

  const apiGatewayCloudWatchRole = raw.apiGatewayCloudWatchRole ?? true;
  if (typeof apiGatewayCloudWatchRole !== 'boolean') {
    problems.push(`${where}: apiGatewayCloudWatchRole must be true or false (got ${show(apiGatewayCloudWatchRole)})`);
  }

  const alarms = parseAlarms(where, raw.alarms, Array.isArray(regions) ? regions : [], problems);

  if (
    problems.length > before ||
    alarms === undefined ||
    throttle === undefined ||
    auth === undefined ||
    clusters === undefined ||
    cors === undefined
  ) {
    return undefined;
  }
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
    clusters,
    cors,
    apiGatewayCloudWatchRole: apiGatewayCloudWatchRole as boolean,
    alarms,
  };
}

const SNS_TOPIC_ARN = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const ALARMS_FIELDS = ['topicArn', 'email', 'errorRatePercent', 'deliveryLatencyP99Ms'];

function parseAlarms(
  where: string,
  raw: unknown,
  regions: readonly unknown[],
  problems: string[],
): AlarmsConfig | undefined {
  if (raw === undefined) return DEFAULT_ALARMS;
  if (!isRecord(raw)) {
    problems.push(`${where}: alarms must be an object {${ALARMS_FIELDS.join(', ')}} (got ${show(raw)})`);
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(raw)) {
    if (!ALARMS_FIELDS.includes(key)) {
      problems.push(`${where}: alarms has an unknown field '${key}' (known: ${ALARMS_FIELDS.join(', ')})`);
    }
  }
  let topicArns: Record<string, string> | undefined;
  const topicArn = raw.topicArn;
  if (typeof topicArn === 'string') {
    topicArns = Object.fromEntries(regions.map((region) => [String(region), topicArn]));
  } else if (isRecord(topicArn)) {
    topicArns = {};
    for (const [region, arn] of Object.entries(topicArn)) {
      if (!regions.includes(region)) {
        problems.push(`${where}: alarms.topicArn names region '${region}', which the stage is not deployed to`);
      } else if (typeof arn !== 'string') {
        problems.push(`${where}: alarms.topicArn.${region} must be an SNS topic ARN (got ${show(arn)})`);
      } else {
        topicArns[region] = arn;
      }
    }
    for (const region of regions) {
      if (!(String(region) in topicArn)) problems.push(`${where}: alarms.topicArn has no topic for region '${region}'`);
    }
  } else if (topicArn !== undefined) {
    problems.push(
      `${where}: alarms.topicArn must be an SNS topic ARN or an object {region: ARN} (got ${show(topicArn)})`,
    );
  }
  for (const [region, arn] of Object.entries(topicArns ?? {})) {
    const match = SNS_TOPIC_ARN.exec(arn);
    if (!match) {
      problems.push(
        `${where}: alarms.topicArn must be an SNS topic ARN such as "arn:aws:sns:${region}:123456789012:alarms" (got ${show(arn)})`,
      );
    } else if (match[1] !== region) {
      problems.push(
        `${where}: alarms.topicArn for region '${region}' is in region '${match[1]}' (got ${show(arn)}); alarms publish to topics of their own region only`,
      );
    }
  }
  const email = raw.email ?? [];
  const emails = typeof email === 'string' ? [email] : email;
  if (!Array.isArray(emails) || emails.some((e) => typeof e !== 'string' || !EMAIL.test(e))) {
    problems.push(`${where}: alarms.email must be an email address or a list of them (got ${show(email)})`);
  } else if (emails.length > 0 && topicArn !== undefined) {
    problems.push(
      `${where}: alarms.email subscribes to the topic the stack creates, so it cannot go with alarms.topicArn (subscribe to ${show(topicArn)} where it is managed)`,
    );
  }
  const errorRatePercent = raw.errorRatePercent ?? DEFAULT_ALARMS.errorRatePercent;
  if (typeof errorRatePercent !== 'number' || !(errorRatePercent > 0 && errorRatePercent <= 100)) {
    problems.push(
      `${where}: alarms.errorRatePercent must be a number above 0 and at most 100 (got ${show(errorRatePercent)})`,
    );
  }
  const latency = raw.deliveryLatencyP99Ms ?? DEFAULT_ALARMS.deliveryLatencyP99Ms;
  if (typeof latency !== 'number' || !Number.isFinite(latency) || latency <= 0) {
    problems.push(
      `${where}: alarms.deliveryLatencyP99Ms must be a positive number of milliseconds (got ${show(latency)})`,
    );
  }
  if (problems.length > before) return undefined;
  return {
    ...(topicArns === undefined ? {} : { topicArns }),
    emails: emails as string[],
    errorRatePercent: errorRatePercent as number,
    deliveryLatencyP99Ms: latency as number,
  };
}

function isCapacity(value: unknown, min: number): value is number {
  return typeof value === 'number' && value >= min && value <= 256 && Number.isInteger(value * 2);
}

function parseClusters(where: string, raw: unknown, problems: string[]): ClustersConfig | undefined {
  if (raw === undefined) return DEFAULT_CLUSTERS;
  if (!isRecord(raw)) {
    problems.push(
      `${where}: clusters must be an object {count, minCapacity, maxCapacity, backupRetentionDays} (got ${show(raw)})`,
    );
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(raw)) {
    if (!(key in DEFAULT_CLUSTERS)) {
      problems.push(
        `${where}: clusters has an unknown field '${key}' (known: ${Object.keys(DEFAULT_CLUSTERS).join(', ')})`,
      );
    }
  }
  const count = raw.count ?? DEFAULT_CLUSTERS.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 26) {
    problems.push(`${where}: clusters.count must be an integer from 1 to 26 (got ${show(count)})`);
  }
  const minCapacity = raw.minCapacity ?? DEFAULT_CLUSTERS.minCapacity;
  if (!isCapacity(minCapacity, 0)) {
    problems.push(`${where}: clusters.minCapacity must be 0 to 256 ACUs in steps of 0.5 (got ${show(minCapacity)})`);
  }
  const maxCapacity = raw.maxCapacity ?? DEFAULT_CLUSTERS.maxCapacity;
  if (!isCapacity(maxCapacity, 1)) {
    problems.push(`${where}: clusters.maxCapacity must be 1 to 256 ACUs in steps of 0.5 (got ${show(maxCapacity)})`);
  } else if (isCapacity(minCapacity, 0) && maxCapacity < minCapacity) {
    problems.push(
      `${where}: clusters.maxCapacity (${maxCapacity}) must be at least clusters.minCapacity (${minCapacity})`,
    );
  }
  const backupRetentionDays = raw.backupRetentionDays ?? DEFAULT_CLUSTERS.backupRetentionDays;
  if (
    typeof backupRetentionDays !== 'number' ||
    !Number.isInteger(backupRetentionDays) ||
    backupRetentionDays < 1 ||
    backupRetentionDays > 35
  ) {
    problems.push(
      `${where}: clusters.backupRetentionDays must be an integer from 1 to 35 (got ${show(backupRetentionDays)})`,
    );
  }
  if (problems.length > before) return undefined;
  return {
    count: count as number,
    minCapacity: minCapacity as number,
    maxCapacity: maxCapacity as number,
    backupRetentionDays: backupRetentionDays as number,
  };
}

function parseCors(
  where: string,
  raw: unknown,
  defaultOrigins: readonly string[],
  problems: string[],
): CorsConfig | undefined {
  if (raw === undefined) return { allowedOrigins: defaultOrigins };
  if (!isRecord(raw)) {
    problems.push(`${where}: cors must be an object {allowedOrigins} (got ${show(raw)})`);
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (key !== 'allowedOrigins') problems.push(`${where}: cors has an unknown field '${key}' (known: allowedOrigins)`);
  }
  const allowedOrigins = raw.allowedOrigins ?? defaultOrigins;
  if (
    !Array.isArray(allowedOrigins) ||
    allowedOrigins.length === 0 ||
    allowedOrigins.some((o) => typeof o !== 'string' || !ORIGIN_ENTRY.test(o))
  ) {
    problems.push(
      `${where}: cors.allowedOrigins must be a non-empty list of lower-case origins such as "https://app.example.com", "https://*" or "*" (got ${show(allowedOrigins)})`,
    );
    return undefined;
  }
  return { allowedOrigins: allowedOrigins as string[] };
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
  const allowedOrigins = raw.allowedOrigins ?? ['*'];
  if (!Array.isArray(allowedOrigins) || allowedOrigins.some((o) => typeof o !== 'string' || !ORIGIN_ENTRY.test(o))) {
    problems.push(
      `${where}: auth.allowedOrigins must be a list of lower-case origins such as "https://app.example.com", "https://*" or "*" (got ${show(allowedOrigins)})`,
    );
    ok = false;
  }
  const allowMissingOrigin = raw.allowMissingOrigin ?? true;
  if (typeof allowMissingOrigin !== 'boolean') {
    problems.push(`${where}: auth.allowMissingOrigin must be true or false (got ${show(allowMissingOrigin)})`);
    ok = false;
  }
  if (!ok) return undefined;
  return {
    issuer: raw.issuer as string,
    audience: raw.audience as string,
    jwksUri: raw.jwksUri as string,
    claims,
    allowedOrigins: allowedOrigins as string[],
    allowMissingOrigin: allowMissingOrigin as boolean,
  };
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

/** The data stack's name for a stage in a region, e.g. `tenantcast-dev-eu-west-1-data`. */
export function dataStackNameOf(stage: Pick<StageConfig, 'name'>, region: string): string {
  return `${stackNameOf(stage, region)}-data`;
}
