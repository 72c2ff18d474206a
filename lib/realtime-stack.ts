import path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { RecursiveLoop } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { FunctionSpec, QueueSpec } from '../lambdas/manifest.ts';
import * as manifest from '../lambdas/manifest.ts';
import { ApiGatewayCloudWatchRole } from './api-gateway-cloudwatch-role.ts';
import type { StageConfig } from './config.ts';
import { FunctionBinding, type IFunctionBinding, type ITenantDataPlane } from './function-binding.ts';
import { Operations } from './operations.ts';
import { RealtimeQueue } from './realtime-queue.ts';
import { RealtimeTable, type RealtimeTableSpec } from './realtime-table.ts';
import { RealtimeWebSocketApi } from './realtime-websocket-api.ts';
import { deliveryQueueNameOf, StagePeers } from './stage-peers.ts';
import { TenantcastFunction } from './tenantcast-function.ts';
import { TenantcastHttpApi } from './tenantcast-http-api.ts';

/** The repository root: manifest entries are relative to it, and it holds package-lock.json. */
export const REPOSITORY_ROOT = path.resolve(import.meta.dirname, '..');

/** What the stack deploys; by default lambdas/manifest.ts. */
export interface RealtimeManifest {
  readonly functions: readonly FunctionSpec[];
  readonly queues: Readonly<Record<string, QueueSpec>>;
  readonly table: RealtimeTableSpec;
  readonly routeSelectionExpression: string;
}

export const DEFAULT_MANIFEST: RealtimeManifest = {
  functions: manifest.functions,
  queues: manifest.queues,
  table: manifest.table,
  routeSelectionExpression: manifest.routeSelectionExpression,
};

/** The queue each queue binding sends to. */
const QUEUE_OF_BINDING = { deliveryQueue: 'delivery', fanoutQueue: 'fanout' } as const;

export interface RealtimeStackProps extends StackProps {
  /** The stage deployed by this stack (one stack per stage and region). */
  readonly stage: StageConfig;

  /**
   * Functions, triggers, bindings, queues and table.
   *
   * @default - lambdas/manifest.ts
   */
  readonly manifest?: RealtimeManifest;

  /**
   * Directory the manifest's `entry` paths are relative to, holding package-lock.json.
   *
   * @default - the repository root
   */
  readonly projectRoot?: string;

  /**
   * The stage's tenant databases (the data stack's TenantClusters), for functions with the `tenantData` binding:
   * a construct, so the grants reference the clusters themselves.
   */
  readonly tenantData: ITenantDataPlane;
}

/**
 * The whole real-time path of one stage in one region: WebSocket API with its authorizer and routes, the table,
 * the queues, and one function per manifest entry, wired to their triggers and bound to what they use.
 */
export class RealtimeStack extends Stack {
  readonly stage: StageConfig;
  readonly table: RealtimeTable;
  readonly webSocketApi: RealtimeWebSocketApi;
  /** The HTTP API of the manifest's `http` routes, behind the JWT authorizer. */
  readonly httpApi: TenantcastHttpApi;
  /** The tenant databases the `tenantData` binding grants access to. */
  readonly tenantData: ITenantDataPlane;
  /** Queues by manifest name. */
  readonly queues: ReadonlyMap<string, RealtimeQueue>;
  /** Functions by manifest name. */
  readonly functions: ReadonlyMap<string, TenantcastFunction>;
  /** The stage's dashboard and alarms in this region. */
  readonly operations: Operations;
  private stagePeers: StagePeers | undefined;

  /** The stage's other regions and their delivery queues, for multi-region delivery (docs/multi-region.md). */
  get peers(): StagePeers {
    this.stagePeers ??= new StagePeers(this, 'StagePeers', { stageName: this.stage.name, regions: this.stage.regions });
    return this.stagePeers;
  }

  constructor(scope: Construct, id: string, props: RealtimeStackProps) {
    const { stage, manifest: manifestOverride, projectRoot, tenantData, ...stackProps } = props;
    super(scope, id, {
      description: `tenantcast real-time backend, stage ${stage.name}`,
      terminationProtection: stage.deletionProtection,
      ...stackProps,
    });
    const spec = manifestOverride ?? DEFAULT_MANIFEST;
    this.stage = stage;
    this.tenantData = tenantData;
    validateManifest(this.node.path, spec);

    Tags.of(this).add('project', 'tenantcast');
    Tags.of(this).add('stage', stage.name);

    const removalPolicy = stage.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    this.table = new RealtimeTable(this, 'Table', {
      spec: spec.table,
      removalPolicy,
      deletionProtection: stage.deletionProtection,
    });
    this.queues = this.createQueues(spec);
    this.functions = this.createFunctions(spec, projectRoot ?? REPOSITORY_ROOT, removalPolicy);
    this.webSocketApi = this.createWebSocketApi(spec, removalPolicy);
    this.httpApi = new TenantcastHttpApi(this, 'HttpApi', {
      jwtIssuer: stage.auth.issuer,
      jwtAudience: [stage.auth.audience],
      corsAllowedOrigins: stage.cors.allowedOrigins,
      throttle: stage.throttle,
      description: `tenantcast ${stage.name} HTTP API`,
      accessLogRetention: stage.logRetentionDays as RetentionDays,
      accessLogRemovalPolicy: removalPolicy,
    });
    for (const fnSpec of spec.functions) this.wire(fnSpec);
    this.addOutputs();
    this.operations = this.createOperations(spec, removalPolicy);
  }

  /** One queue (with its DLQ) per manifest queue. */
  private createQueues(spec: RealtimeManifest): Map<string, RealtimeQueue> {
    const queues = new Map<string, RealtimeQueue>();
    for (const [name, queueSpec] of Object.entries(spec.queues)) {
      queues.set(
        name,
        new RealtimeQueue(this, `${pascal(name)}Queue`, {
          spec: queueSpec,
          // Peer regions address the delivery queue by name (docs/multi-region.md).
          ...(name === QUEUE_OF_BINDING.deliveryQueue && { queueName: deliveryQueueNameOf(this.stage.name) }),
        }),
      );
    }
    return queues;
  }

  /** One function per manifest entry, with the stage's logging settings. */
  private createFunctions(
    spec: RealtimeManifest,
    root: string,
    removalPolicy: RemovalPolicy,
  ): Map<string, TenantcastFunction> {
    const functions = new Map<string, TenantcastFunction>();
    for (const fn of spec.functions) {
      functions.set(
        fn.name,
        new TenantcastFunction(this, fn.name, {
          entry: path.join(root, fn.entry),
          projectRoot: root,
          depsLockFilePath: path.join(root, 'package-lock.json'),
          description: fn.description,
          timeout: Duration.seconds(fn.timeoutSeconds),
          memorySize: fn.memoryMB,
          ...(fn.recursiveLoop === 'allow' && { recursiveLoop: RecursiveLoop.ALLOW }),
          environment: { ...fn.environment },
          logLevel: this.stage.logLevel,
          logGroupRetention: this.stage.logRetentionDays as RetentionDays,
          logGroupRemovalPolicy: removalPolicy,
        }),
      );
    }
    return functions;
  }

  /** The WebSocket API with the manifest's authorizer on `$connect` (validateManifest checked there is one). */
  private createWebSocketApi(spec: RealtimeManifest, removalPolicy: RemovalPolicy): RealtimeWebSocketApi {
    const { stage } = this;
    const authorizerSpec = spec.functions.find((fn) => fn.trigger.kind === 'websocket-authorizer');
    const api = new RealtimeWebSocketApi(this, 'WebSocketApi', {
      stageName: stage.name,
      authorizer: this.functions.get(authorizerSpec?.name ?? '') as TenantcastFunction,
      routeSelectionExpression: spec.routeSelectionExpression,
      throttle: stage.throttle,
      description: `tenantcast ${stage.name}`,
      accessLogRetention: stage.logRetentionDays as RetentionDays,
      accessLogRemovalPolicy: removalPolicy,
    });
    if (stage.apiGatewayCloudWatchRole) {
      // WebSocket access logging needs the region's API Gateway account setting to name a CloudWatch Logs role.
      const cloudWatchRole = new ApiGatewayCloudWatchRole(this, 'ApiGatewayCloudWatchRole');
      api.stage.node.addDependency(cloudWatchRole.account);
    }
    return api;
  }

  /** A function's trigger (route, queue, schedule) and its bindings. */
  private wire(fnSpec: FunctionSpec): void {
    const fn = this.functions.get(fnSpec.name) as TenantcastFunction;
    const trigger = fnSpec.trigger;
    switch (trigger.kind) {
      case 'websocket-authorizer':
        break; // attached to $connect by RealtimeWebSocketApi
      case 'websocket':
        for (const route of trigger.routes) {
          this.webSocketApi.addRoute(route, fn, { returnResponse: trigger.returnResponse });
        }
        break;
      case 'sqs':
        (this.queues.get(trigger.queue) as RealtimeQueue).addConsumer(fn, {
          batchSize: trigger.batchSize,
          maxBatchingWindow: Duration.seconds(trigger.maxBatchingWindowSeconds),
        });
        break;
      case 'http':
        for (const route of trigger.routes) this.httpApi.addRoute(route.method, route.path, fn);
        break;
      case 'schedule':
        new Rule(this, `${fnSpec.name}Schedule`, {
          description: `Invokes ${fnSpec.name} every ${trigger.rateMinutes} minute(s)`,
          schedule: Schedule.rate(Duration.minutes(trigger.rateMinutes)),
          targets: [new LambdaFunction(fn, { retryAttempts: 2 })],
        });
        break;
    }
    fn.bind(...fnSpec.bindings.map((binding) => this.bindingFor(binding)));
  }

  private addOutputs(): void {
    new CfnOutput(this, 'WebSocketUrl', {
      description: 'Clients connect here',
      value: this.webSocketApi.url,
    });
    new CfnOutput(this, 'CallbackUrl', {
      description: 'API Gateway Management API endpoint of the stage (@connections)',
      value: this.webSocketApi.callbackUrl,
    });
    new CfnOutput(this, 'HttpApiUrl', {
      description: 'Base URL of the HTTP API (entity, publish and admin routes)',
      value: this.httpApi.url,
    });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    for (const [name, queue] of this.queues) {
      new CfnOutput(this, `${pascal(name)}QueueUrl`, { value: queue.queueUrl });
      new CfnOutput(this, `${pascal(name)}DeadLetterQueueUrl`, { value: queue.deadLetterQueue.queueUrl });
    }
  }

  /** Dashboard, alarms and the `DashboardUrl` output (docs/operations.md). */
  private createOperations(spec: RealtimeManifest, removalPolicy: RemovalPolicy): Operations {
    const { stage } = this;
    const region = this.region;
    const alarmTopicArn = stage.alarms.topicArns?.[region];
    return new Operations(this, 'Operations', {
      stageName: stage.name,
      functions: this.functions,
      queues: this.queues,
      tableName: this.table.tableName,
      webSocketApi: { apiId: this.webSocketApi.api.apiId, stageName: this.webSocketApi.stage.stageName },
      httpApi: { apiId: this.httpApi.api.apiId, stageName: this.httpApi.stage.stageName },
      dataApiFunctions: spec.functions.filter((fn) => fn.bindings.includes('tenantData')).map((fn) => fn.name),
      // By name, not by reference: the clusters are in the data stack (identifiers as lib/tenant-clusters.ts names them).
      databaseClusterIdentifiers: Array.from(
        { length: stage.clusters.count },
        (_, i) => `tenantcast-${stage.name}-cluster-${String.fromCharCode(97 + i)}`,
      ),
      ...(alarmTopicArn === undefined
        ? { alarmEmails: stage.alarms.emails }
        : { alarmTopic: Topic.fromTopicArn(this, 'AlarmTopic', alarmTopicArn) }),
      errorRatePercent: stage.alarms.errorRatePercent,
      deliveryLatencyP99Ms: stage.alarms.deliveryLatencyP99Ms,
      removalPolicy,
    });
  }

  private bindingFor(binding: manifest.Binding): IFunctionBinding {
    switch (binding) {
      case 'table':
        return FunctionBinding.table(this.table);
      case 'deliveryQueue':
        return FunctionBinding.deliveryQueue((this.queues.get(QUEUE_OF_BINDING.deliveryQueue) as RealtimeQueue).queue);
      case 'fanoutQueue':
        return FunctionBinding.fanoutQueue((this.queues.get(QUEUE_OF_BINDING.fanoutQueue) as RealtimeQueue).queue);
      case 'connections':
        return FunctionBinding.connections(this.webSocketApi);
      case 'auth':
        return FunctionBinding.auth(this.stage.auth);
      case 'changesQueue':
        return FunctionBinding.changesQueue((this.queues.get('changes') as RealtimeQueue).queue);
      case 'tenantData':
        return FunctionBinding.tenantData(this.tenantData);
      case 'peers':
        return FunctionBinding.peers(this.peers);
      case 'replicationQueue':
        return FunctionBinding.replicationQueue((this.queues.get('replication') as RealtimeQueue).queue);
    }
  }
}

/** Checks what TypeScript cannot: names, references between entries, and the one-authorizer rule. */
function validateManifest(where: string, spec: RealtimeManifest): void {
  const problems: string[] = [];
  const names = spec.functions.map((fn) => fn.name);
  for (const [i, name] of names.entries()) {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) problems.push(`function name '${name}' must be alphanumeric`);
    if (names.indexOf(name) !== i) problems.push(`function '${name}' is declared twice`);
  }
  const authorizers = spec.functions.filter((fn) => fn.trigger.kind === 'websocket-authorizer');
  if (authorizers.length !== 1) {
    problems.push(
      `exactly one function needs the 'websocket-authorizer' trigger (got ${authorizers.length}: [${authorizers.map((fn) => fn.name).join(', ')}])`,
    );
  }
  for (const fn of spec.functions) {
    if (fn.trigger.kind === 'sqs' && !(fn.trigger.queue in spec.queues)) {
      problems.push(
        `function '${fn.name}' consumes queue '${fn.trigger.queue}', which is not declared (queues: ${Object.keys(spec.queues).join(', ') || 'none'})`,
      );
    }
    if (fn.bindings.includes('deliveryQueue') && !(QUEUE_OF_BINDING.deliveryQueue in spec.queues)) {
      problems.push(
        `function '${fn.name}' binds 'deliveryQueue' but no '${QUEUE_OF_BINDING.deliveryQueue}' queue is declared`,
      );
    }
    const duplicates = fn.bindings.filter((b, i) => fn.bindings.indexOf(b) !== i);
    if (duplicates.length > 0) problems.push(`function '${fn.name}' lists binding(s) twice: ${duplicates.join(', ')}`);
    if (fn.trigger.kind === 'schedule') {
      const rate = fn.trigger.rateMinutes;
      if (!Number.isInteger(rate) || rate < 1) {
        problems.push(`function '${fn.name}' has a schedule rate of ${rate} minutes (a whole number from 1)`);
      }
    }
  }
  const httpRoutes = spec.functions.flatMap((fn) =>
    fn.trigger.kind === 'http' ? fn.trigger.routes.map((r) => `${r.method} ${r.path}`) : [],
  );
  for (const [i, route] of httpRoutes.entries()) {
    if (httpRoutes.indexOf(route) !== i) problems.push(`HTTP route '${route}' is declared twice`);
  }
  for (const name of Object.keys(spec.queues)) {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) problems.push(`queue name '${name}' must be alphanumeric`);
  }
  if (problems.length > 0) throw new Error(`${where}: invalid function manifest:\n  - ${problems.join('\n  - ')}`);
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
