/**
 * What an operator of one stage in one region looks at and is woken by: a CloudWatch dashboard, alarms routed to an
 * SNS topic, and log retention on every function's log group (docs/operations.md, "Dashboards and alarms").
 */
import { CfnOutput, CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnFunction, type IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { metricNames } from '../lambdas/shared/metrics.ts';

/** Which functions (`service` dimension) emit which custom metric: the "emitted by" column of docs/operations.md. */
export const METRIC_EMITTERS: Readonly<Record<string, readonly string[]>> = {
  [metricNames.connectionsOpened]: ['connect'],
  [metricNames.connectionsRefused]: ['connect'],
  [metricNames.connectionsClosed]: ['disconnect'],
  [metricNames.framesIn]: ['message'],
  [metricNames.framesRejected]: ['message'],
  [metricNames.rateLimited]: ['message', 'publishApi', 'entityApi', 'adminApi'],
  [metricNames.messagesIn]: ['message', 'publishApi'],
  [metricNames.posts]: ['broadcaster', 'fanout'],
  [metricNames.deliveries]: ['broadcaster', 'fanout'],
  [metricNames.deliveryLatency]: ['broadcaster', 'fanout'],
  [metricNames.gone]: ['broadcaster', 'fanout'],
  [metricNames.postsThrottled]: ['broadcaster', 'fanout'],
  [metricNames.postServerErrors]: ['broadcaster', 'fanout'],
  [metricNames.deliveryFailures]: ['broadcaster', 'fanout'],
  [metricNames.dlqSends]: ['broadcaster', 'fanout'],
};

/** A queue whose dead-letter queue gets a "not empty" alarm (a RealtimeQueue is one). */
export interface IDeadLetteredQueue {
  readonly deadLetterQueue: IQueue;
}

/** The API Gateway API (WebSocket or HTTP) and stage whose metrics the dashboard shows. */
export interface ApiMetricsSource {
  readonly apiId: string;
  readonly stageName: string;
}

export interface OperationsProps {
  /** The tenantcast stage: part of the dashboard name. */
  readonly stageName: string;

  /** The stage's functions by manifest name (also their `service` dimension). */
  readonly functions: ReadonlyMap<string, IFunction>;

  /** Queues by manifest name; each dead-letter queue gets a depth graph and a "not empty" alarm. */
  readonly queues: ReadonlyMap<string, IDeadLetteredQueue>;

  /** The DynamoDB table whose throttles are graphed and alarmed on. */
  readonly tableName: string;

  /** The WebSocket API: connections, messages, client and execution errors. */
  readonly webSocketApi: ApiMetricsSource;

  /**
   * The HTTP API: requests, 4xx and 5xx.
   *
   * @default - none graphed
   */
  readonly httpApi?: ApiMetricsSource;

  /**
   * Names of the functions calling the RDS Data API (the `tenantData` binding): the Data API publishes no metric of
   * its own, so its errors show as these functions' errors.
   *
   * @default - none
   */
  readonly dataApiFunctions?: readonly string[];

  /**
   * Aurora cluster identifiers of the stage's tenant databases in this region (capacity, connections).
   *
   * @default - none graphed
   */
  readonly databaseClusterIdentifiers?: readonly string[];

  /** Namespace of the functions' custom metrics (`POWERTOOLS_METRICS_NAMESPACE`). @default 'tenantcast' */
  readonly metricsNamespace?: string;

  /**
   * Where alarms notify. An existing topic (in this region: CloudWatch alarms publish to same-region topics only).
   *
   * @default - a new topic, encrypted with a new KMS key and reachable over TLS only
   */
  readonly alarmTopic?: ITopic;

  /**
   * Email addresses subscribed to the topic this construct creates (ignored with `alarmTopic`).
   *
   * @default - none
   */
  readonly alarmEmails?: readonly string[];

  /** Percentage of a function's invocations failing in 5 minutes that raises its error-rate alarm. @default 5 */
  readonly errorRatePercent?: number;

  /** p99 of `DeliveryLatency` (ms) over 5 minutes that, three times running, raises the latency alarm. @default 1000 */
  readonly deliveryLatencyP99Ms?: number;

  /** What happens to the topic's key when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

const PERIOD = Duration.minutes(1);
const ALARM_PERIOD = Duration.minutes(5);

function graph(title: string, left: IMetric[], right: IMetric[] = [], width = 8): GraphWidget {
  return new GraphWidget({ title, left, right, width, height: 6 });
}

function apiMetric(api: ApiMetricsSource, metricName: string, label: string): Metric {
  return new Metric({
    namespace: 'AWS/ApiGateway',
    metricName,
    dimensionsMap: { ApiId: api.apiId, Stage: api.stageName },
    statistic: 'Sum',
    period: PERIOD,
    label,
  });
}

function tableMetric(tableName: string, metricName: string): Metric {
  return new Metric({
    namespace: 'AWS/DynamoDB',
    metricName,
    dimensionsMap: { TableName: tableName },
    statistic: 'Sum',
    period: PERIOD,
    label: metricName,
  });
}

/** Alarms take metrics without labels: a labelled metric renders as metric math, without Statistic fields. */
function dlqDepth(name: string, queue: IDeadLetteredQueue, label = true): IMetric {
  return queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
    statistic: 'Maximum',
    period: PERIOD,
    ...(label && { label: `${name} DLQ` }),
  });
}

/**
 * The dashboard `tenantcast-<stage>-<region>` (connections, messages in/out, delivery latency p50/p99, errors and
 * throttles, DLQ depth, Lambda duration/errors/concurrency, DynamoDB throttles, Data API and Aurora) and alarms on
 * dead-letter queues not empty, function error rates, delivery latency p99 and throttling, all notifying
 * {@link Operations.alarmTopic}.
 */
export class Operations extends Construct {
  readonly dashboard: Dashboard;
  readonly alarmTopic: ITopic;
  readonly alarms: Alarm[] = [];
  readonly dashboardName: string;
  private readonly namespace: string;
  private readonly action: SnsAction;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { errorRate, latencyMs } = this.checked(props);
    this.namespace = props.metricsNamespace ?? 'tenantcast';
    const region = Stack.of(this).region;
    this.dashboardName = `tenantcast-${props.stageName}-${region}`;

    this.alarmTopic = props.alarmTopic ?? this.createTopic(props);
    this.action = new SnsAction(this.alarmTopic);

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: this.dashboardName,
      defaultInterval: Duration.hours(3),
    });
    this.addDeliveryWidgets(props, region);
    this.addFunctionWidgets(props);
    this.addDataWidgets(props);
    this.addAlarms(props, errorRate, latencyMs);

    new CfnOutput(Stack.of(this), 'DashboardUrl', {
      description: "The stage's CloudWatch dashboard in this region",
      value: `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${this.dashboardName}`,
    });
  }

  /** The props' thresholds with their defaults; throws at synth on values CloudWatch could not use. */
  private checked(props: OperationsProps): { errorRate: number; latencyMs: number } {
    const errorRate = props.errorRatePercent ?? 5;
    if (!(errorRate > 0 && errorRate <= 100)) {
      throw new Error(`${this.node.path}: errorRatePercent must be above 0 and at most 100 (got ${errorRate})`);
    }
    const latencyMs = props.deliveryLatencyP99Ms ?? 1000;
    if (!(Number.isFinite(latencyMs) && latencyMs > 0)) {
      throw new Error(`${this.node.path}: deliveryLatencyP99Ms must be a positive number (got ${latencyMs})`);
    }
    for (const name of props.dataApiFunctions ?? []) {
      if (!props.functions.has(name)) {
        throw new Error(
          `${this.node.path}: dataApiFunctions names '${name}', which is not a function (functions: ${[...props.functions.keys()].join(', ')})`,
        );
      }
    }
    return { errorRate, latencyMs };
  }

  /** The title, then connections, messages, latency, errors and throttles, DLQs and the table. */
  private addDeliveryWidgets(props: OperationsProps, region: string): void {
    const ws = props.webSocketApi;
    const sum = (metricName: string) => this.custom(metricName, 'Sum', props.functions);
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# tenantcast ${props.stageName} (${region})\nCustom metrics: namespace \`${this.namespace}\`, dimension \`service\` (docs/operations.md).`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      graph(
        'Connections',
        [
          ...sum(metricNames.connectionsOpened),
          ...sum(metricNames.connectionsClosed),
          ...sum(metricNames.connectionsRefused),
        ],
        [apiMetric(ws, 'ConnectCount', 'ConnectCount (API Gateway)')],
      ),
      graph(
        'Messages in / out',
        [...sum(metricNames.messagesIn), ...sum(metricNames.deliveries)],
        [...sum(metricNames.posts), apiMetric(ws, 'MessageCount', 'MessageCount (API Gateway)')],
      ),
      graph('Delivery latency p50 / p99 (ms)', [
        ...this.custom(metricNames.deliveryLatency, 'p50', props.functions),
        ...this.custom(metricNames.deliveryLatency, 'p99', props.functions),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Errors and throttles',
        [
          ...sum(metricNames.framesRejected),
          ...sum(metricNames.rateLimited),
          ...sum(metricNames.postServerErrors),
          ...sum(metricNames.deliveryFailures),
          apiMetric(ws, 'ClientError', 'WebSocket ClientError'),
          apiMetric(ws, 'ExecutionError', 'WebSocket ExecutionError'),
          ...(props.httpApi
            ? [apiMetric(props.httpApi, '4xx', 'HTTP 4xx'), apiMetric(props.httpApi, '5xx', 'HTTP 5xx')]
            : []),
        ],
        [...sum(metricNames.postsThrottled), ...sum(metricNames.gone)],
      ),
      graph(
        'Dead-letter queue depth',
        [...props.queues].map(([name, queue]) => dlqDepth(name, queue)),
        sum(metricNames.dlqSends),
      ),
      graph('DynamoDB throttles', [
        tableMetric(props.tableName, 'ReadThrottleEvents'),
        tableMetric(props.tableName, 'WriteThrottleEvents'),
        tableMetric(props.tableName, 'SystemErrors'),
      ]),
    );
  }

  /** Lambda duration, errors, concurrency and throttles per function. */
  private addFunctionWidgets(props: OperationsProps): void {
    const functions = [...props.functions];
    this.dashboard.addWidgets(
      graph(
        'Lambda duration p99 (ms)',
        functions.map(([name, fn]) => fn.metricDuration({ statistic: 'p99', period: PERIOD, label: name })),
        [],
      ),
      graph(
        'Lambda errors',
        functions.map(([name, fn]) => fn.metricErrors({ period: PERIOD, label: name })),
      ),
      graph(
        'Lambda concurrency and throttles',
        functions.map(([name, fn]) =>
          fn.metric('ConcurrentExecutions', { statistic: 'Maximum', period: PERIOD, label: name }),
        ),
        functions.map(([name, fn]) => fn.metricThrottles({ period: PERIOD, label: `${name} throttles` })),
      ),
    );
  }

  /** The functions using the Data API, and the Aurora clusters' capacity and connections. */
  private addDataWidgets(props: OperationsProps): void {
    const dataFunctions = (props.dataApiFunctions ?? []).map((name) => [name, props.functions.get(name)] as const);
    const clusters = props.databaseClusterIdentifiers ?? [];
    const rds = (metricName: string, cluster: string, statistic: string) =>
      new Metric({
        namespace: 'AWS/RDS',
        metricName,
        dimensionsMap: { DBClusterIdentifier: cluster },
        statistic,
        period: PERIOD,
        label: `${cluster} ${metricName}`,
      });
    this.dashboard.addWidgets(
      graph(
        'Data API errors (functions using the Data API)',
        dataFunctions.flatMap(([name, fn]) => (fn ? [fn.metricErrors({ period: PERIOD, label: name })] : [])),
        [],
        12,
      ),
      graph(
        'Aurora capacity (ACU) and connections',
        clusters.map((c) => rds('ServerlessDatabaseCapacity', c, 'Average')),
        clusters.map((c) => rds('DatabaseConnections', c, 'Maximum')),
        12,
      ),
    );
  }

  /** DLQs not empty, error rates and throttles per function, delivery latency p99, posts and table throttled. */
  private addAlarms(props: OperationsProps, errorRate: number, latencyMs: number): void {
    const functions = [...props.functions];
    for (const [name, queue] of props.queues) {
      this.alarm(`${pascal(name)}DeadLetterQueueNotEmpty`, {
        metric: dlqDepth(name, queue, false),
        threshold: 0,
        description: `The ${name} dead-letter queue holds messages: deliveries that failed on every attempt. Inspect and redrive them.`,
      });
    }
    for (const [name, fn] of functions) {
      this.alarm(`${pascal(name)}ErrorRate`, {
        metric: new MathExpression({
          expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
          usingMetrics: {
            errors: fn.metricErrors({ period: ALARM_PERIOD }),
            invocations: fn.metricInvocations({ period: ALARM_PERIOD }),
          },
          period: ALARM_PERIOD,
          label: `${name} error rate (%)`,
        }),
        threshold: errorRate,
        description: `More than ${errorRate}% of ${name}'s invocations failed in 5 minutes.`,
      });
      this.alarm(`${pascal(name)}Throttles`, {
        metric: fn.metricThrottles({ period: ALARM_PERIOD }),
        threshold: 0,
        description: `Lambda throttled invocations of ${name}: raise its reserved or the account's concurrency.`,
      });
    }
    for (const metric of this.custom(metricNames.deliveryLatency, 'p99', props.functions, ALARM_PERIOD, false)) {
      const service = metric.dimensions?.service as string;
      this.alarm(`${pascal(service)}DeliveryLatencyP99`, {
        metric,
        threshold: latencyMs,
        evaluationPeriods: 3,
        description: `p99 publish-to-post latency of ${service} above ${latencyMs} ms for 15 minutes.`,
      });
    }
    const postsThrottled = this.custom(metricNames.postsThrottled, 'Sum', props.functions, ALARM_PERIOD);
    if (postsThrottled.length > 0) {
      this.alarm('ConnectionsPostsThrottled', {
        metric: new MathExpression({
          expression: postsThrottled.map((_, i) => `FILL(m${i}, 0)`).join(' + '),
          usingMetrics: Object.fromEntries(postsThrottled.map((m, i) => [`m${i}`, m])),
          period: ALARM_PERIOD,
          label: 'PostsThrottled',
        }),
        threshold: 0,
        evaluationPeriods: 3,
        description: '@connections posts answered 429 for 15 minutes: the API Gateway account limits are reached.',
      });
    }
    this.alarm('TableThrottles', {
      metric: new MathExpression({
        expression: 'FILL(r, 0) + FILL(w, 0)',
        usingMetrics: {
          r: tableMetric(props.tableName, 'ReadThrottleEvents').with({ period: ALARM_PERIOD }),
          w: tableMetric(props.tableName, 'WriteThrottleEvents').with({ period: ALARM_PERIOD }),
        },
        period: ALARM_PERIOD,
        label: 'DynamoDB throttle events',
      }),
      threshold: 0,
      description: 'DynamoDB throttled reads or writes of the table.',
    });
  }

  /** One custom metric per function emitting it (and present in `functions`), dimension `service`. */
  private custom(
    metricName: string,
    statistic: string,
    functions: ReadonlyMap<string, IFunction>,
    period: Duration = PERIOD,
    label = true,
  ): Metric[] {
    const services = (METRIC_EMITTERS[metricName] ?? []).filter((service) => functions.has(service));
    return services.map(
      (service) =>
        new Metric({
          namespace: this.namespace,
          metricName,
          dimensionsMap: { service },
          statistic,
          period,
          ...(label && { label: `${metricName} ${statistic === 'Sum' ? '' : `${statistic} `}(${service})` }),
        }),
    );
  }

  private alarm(
    id: string,
    options: { metric: IMetric; threshold: number; description: string; evaluationPeriods?: number },
  ): Alarm {
    const alarm = new Alarm(this, id, {
      alarmName: `${this.dashboardName}-${id}`,
      alarmDescription: options.description,
      metric: options.metric,
      threshold: options.threshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    this.alarms.push(alarm);
    return alarm;
  }

  private createTopic(props: OperationsProps): Topic {
    // CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key: a customer key lets it in.
    const key = new Key(this, 'AlarmTopicKey', {
      description: `Encrypts the tenantcast ${props.stageName} alarm topic`,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    key.grant(new ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    const topic = new Topic(this, 'AlarmTopic', {
      displayName: `tenantcast ${props.stageName} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    const stack = Stack.of(this);
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*' }),
          },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    for (const email of props.alarmEmails ?? []) topic.addSubscription(new EmailSubscription(email));
    return topic;
  }
}

export interface FunctionLogRetentionProps {
  /** How long the log groups keep logs. @default RetentionDays.ONE_MONTH */
  readonly retention?: RetentionDays;
  /** What happens to the log groups when the stack is deleted. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Gives every Lambda function under `scope` that logs to Lambda's implicit `/aws/lambda/<name>` group (no
 * `LoggingConfig.LogGroup`: custom resource providers such as the VPC's default security group one) a log group of
 * its own with retention, so no log group of the stack keeps logs forever. Call it once the functions exist.
 *
 * Written by hand: CDK's `logRetention` (a custom resource Lambda itself) does not reach providers' handlers.
 *
 * @returns the log groups created
 */
export function retainFunctionLogs(scope: IConstruct, props: FunctionLogRetentionProps = {}): LogGroup[] {
  const created: LogGroup[] = [];
  for (const c of scope.node.findAll()) {
    if (!CfnResource.isCfnResource(c) || c.cfnResourceType !== CfnFunction.CFN_RESOURCE_TYPE_NAME) continue;
    // An L1 CfnFunction says whether it has a log group; other CfnResources of this type (custom resource
    // providers) never set one.
    if (c instanceof CfnFunction && hasLogGroup(c)) continue;
    const logGroup = new LogGroup(c.node.scope ?? scope, `${c.node.id}LogGroup`, {
      retention: props.retention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    c.addPropertyOverride('LoggingConfig.LogGroup', logGroup.logGroupName);
    c.addResourceDependency(logGroup.node.defaultChild as CfnResource);
    created.push(logGroup);
  }
  return created;
}

function hasLogGroup(fn: CfnFunction): boolean {
  const config = fn.loggingConfig;
  return config !== undefined && 'logGroup' in config && config.logGroup !== undefined;
}

function pascal(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
