/**
 * Dashboards, alarms and log retention of every stage x region (lib/operations.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { functions as manifestFunctions, queues as manifestQueues } from '../../lambdas/manifest.ts';
import { metricNames } from '../../lambdas/shared/metrics.ts';
import { ConfigError, parseConfig, type StageConfig } from '../../lib/config.ts';
import { addRealtimeStacks } from '../../lib/tenantcast-app.ts';
import { cdkJsonContext, newApp, stageConfig, synthStack } from './support.ts';

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
type Widget = { type: string; properties: { title?: string; metrics?: unknown[][] } };

const app = newApp();
const stacks = addRealtimeStacks(app);
const templates = app.node.children
  .filter((c): c is Stack => c instanceof Stack)
  .map((s) => ({ name: s.stackName, template: Template.fromStack(s) }));
const realtime = stacks.map((stack) => ({ stack, template: Template.fromStack(stack) }));

function resourcesOf(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.findResources(type)) as [string, Resource][];
}

/** The dashboard's widgets, with the `Fn::Join` of the body joined (tokens left as JSON). */
function widgetsOf(template: Template): Widget[] {
  const [[, dashboard] = []] = resourcesOf(template, 'AWS::CloudWatch::Dashboard');
  const body = dashboard?.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] } | string;
  const text =
    typeof body === 'string'
      ? body
      : body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : JSON.stringify(part))).join('');
  // Tokens inside strings break the JSON: replace each resolved reference by a placeholder.
  return (JSON.parse(text.replace(/"?\{"(Ref|Fn::GetAtt)":[^}]*\}"?/g, '"TOKEN"')) as { widgets: Widget[] }).widgets;
}

/** Every metric name a widget graphs (any namespace). */
function metricNamesOf(widget: Widget): string[] {
  return (widget.properties.metrics ?? []).flatMap((m) => (typeof m[1] === 'string' ? [m[1]] : []));
}

function widgetTitled(widgets: Widget[], title: RegExp): Widget {
  const widget = widgets.find((w) => title.test(w.properties.title ?? ''));
  if (!widget) throw new Error(`no widget titled ${title} (titles: ${widgets.map((w) => w.properties.title)})`);
  return widget;
}

function alarmsOf(template: Template): Resource[] {
  return resourcesOf(template, 'AWS::CloudWatch::Alarm').map(([, r]) => r);
}

describe('the operations dashboard', () => {
  it('exists once in every stage x region, named after both', () => {
    const names = realtime.map(({ template }) =>
      resourcesOf(template, 'AWS::CloudWatch::Dashboard').map(([, r]) => r.Properties.DashboardName),
    );
    expect(names).toEqual(stacks.map((s) => [`tenantcast-${s.stage.name}-${s.region}`]));
  });

  it.each([
    [/^Connections/, [metricNames.connectionsOpened, metricNames.connectionsClosed, 'ConnectCount']],
    [/^Messages in/, [metricNames.messagesIn, metricNames.deliveries, 'MessageCount']],
    [/^Delivery latency/, [metricNames.deliveryLatency]],
    [/^Errors and throttles/, [metricNames.framesRejected, metricNames.postsThrottled, '5xx', 'ExecutionError']],
    [/^Dead-letter/, ['ApproximateNumberOfMessagesVisible', metricNames.dlqSends]],
    [/^Lambda duration/, ['Duration']],
    [/^Lambda errors/, ['Errors']],
    [/^Lambda concurrency/, ['ConcurrentExecutions', 'Throttles']],
    [/^DynamoDB throttles/, ['ReadThrottleEvents', 'WriteThrottleEvents']],
    [/^Data API errors/, ['Errors']],
    [/^Aurora/, ['ServerlessDatabaseCapacity', 'DatabaseConnections']],
  ])('has a widget %s graphing %j in every stack', (title, expected) => {
    for (const { template } of realtime) {
      expect(metricNamesOf(widgetTitled(widgetsOf(template), title))).toEqual(expect.arrayContaining(expected));
    }
  });

  it('shows delivery latency as p50 and p99 of each delivering function', () => {
    const widget = widgetTitled(widgetsOf(realtime[0]?.template as Template), /^Delivery latency/);
    const series = (widget.properties.metrics ?? []).map((m) => {
      const options = m[m.length - 1] as { stat?: string };
      return `${m[3]} ${options.stat}`;
    });
    expect(series.sort()).toEqual(['broadcaster p50', 'broadcaster p99', 'fanout p50', 'fanout p99']);
  });

  it('graphs every function for duration, errors and concurrency, and every dead-letter queue', () => {
    const widgets = widgetsOf(realtime[0]?.template as Template);
    for (const title of [/^Lambda duration/, /^Lambda errors/, /^Lambda concurrency/]) {
      const graphed = (widgetTitled(widgets, title).properties.metrics ?? []).filter((m) => m[1] !== 'Throttles');
      expect(graphed).toHaveLength(manifestFunctions.length);
    }
    const dlq = widgetTitled(widgets, /^Dead-letter/).properties.metrics ?? [];
    expect(dlq.filter((m) => m[1] === 'ApproximateNumberOfMessagesVisible')).toHaveLength(
      Object.keys(manifestQueues).length,
    );
  });

  it('graphs Aurora metrics of the clusters the data stack creates, by identifier', () => {
    const synthesized = synthStack('prod', 'us-east-1');
    const identifiers = resourcesOf(synthesized.dataTemplate, 'AWS::RDS::DBCluster').map(
      ([, r]) => r.Properties.DBClusterIdentifier,
    );
    const widget = widgetTitled(widgetsOf(synthesized.template), /^Aurora/);
    const graphed = (widget.properties.metrics ?? []).filter((m) => m[1] === 'ServerlessDatabaseCapacity');
    expect(graphed.map((m) => m[3]).sort()).toEqual([...identifiers].sort());
  });

  it('is linked from the DashboardUrl output', () => {
    for (const { stack, template } of realtime) {
      const outputs = template.findOutputs('DashboardUrl');
      expect(JSON.stringify(Object.values(outputs)[0]?.Value)).toContain(
        `#dashboards:name=tenantcast-${stack.stage.name}-${stack.region}`,
      );
    }
  });
});

describe('the alarms', () => {
  const topicRefOf = (template: Template) => {
    const [[topicId] = []] = resourcesOf(template, 'AWS::SNS::Topic');
    return { Ref: topicId };
  };

  it('notify the stack topic on alarm and on recovery, every one of them', () => {
    for (const { template } of realtime) {
      const alarms = alarmsOf(template);
      expect(alarms.length).toBeGreaterThan(0);
      for (const alarm of alarms) {
        expect(alarm.Properties.AlarmActions).toEqual([topicRefOf(template)]);
        expect(alarm.Properties.OKActions).toEqual([topicRefOf(template)]);
      }
    }
  });

  it('fire when any dead-letter queue holds a message', () => {
    const { template } = realtime[0] as (typeof realtime)[number];
    const dlqAlarms = alarmsOf(template).filter(
      (a) => a.Properties.MetricName === 'ApproximateNumberOfMessagesVisible',
    );
    const dlqIds = resourcesOf(template, 'AWS::SQS::Queue')
      .filter(([id]) => id.includes('DeadLetterQueue'))
      .map(([id]) => id);
    expect(dlqIds).toHaveLength(Object.keys(manifestQueues).length);
    const watched = dlqAlarms.map((a) => JSON.stringify(a.Properties.Dimensions));
    for (const id of dlqIds) expect(watched.some((d) => d.includes(`"${id}"`))).toBe(true);
    for (const alarm of dlqAlarms) {
      expect(alarm.Properties).toMatchObject({
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        Statistic: 'Maximum',
      });
    }
  });

  it('watch the error rate of every function, at the configured percentage', () => {
    for (const { stack, template } of realtime) {
      const errorRates = alarmsOf(template).filter((a) => String(a.Properties.AlarmName).endsWith('ErrorRate'));
      expect(errorRates).toHaveLength(manifestFunctions.length);
      for (const alarm of errorRates) {
        expect(alarm.Properties.Threshold).toBe(stack.stage.alarms.errorRatePercent);
        expect(JSON.stringify(alarm.Properties.Metrics)).toContain('100 * errors / invocations');
      }
    }
  });

  it('watch the p99 delivery latency of each delivering function', () => {
    const { stack, template } = realtime[0] as (typeof realtime)[number];
    const latency = alarmsOf(template).filter((a) => a.Properties.MetricName === metricNames.deliveryLatency);
    expect(latency.map((a) => (a.Properties.Dimensions as { Value: string }[])[0]?.Value).sort()).toEqual([
      'broadcaster',
      'fanout',
    ]);
    for (const alarm of latency) {
      expect(alarm.Properties).toMatchObject({
        Namespace: 'tenantcast',
        ExtendedStatistic: 'p99',
        Threshold: stack.stage.alarms.deliveryLatencyP99Ms,
      });
    }
  });

  it('watch throttling of functions, @connections posts and the table', () => {
    const { template } = realtime[0] as (typeof realtime)[number];
    const alarms = alarmsOf(template);
    const lambdaThrottles = alarms.filter((a) => a.Properties.MetricName === 'Throttles');
    expect(lambdaThrottles).toHaveLength(manifestFunctions.length);
    const names = alarms.map((a) => String(a.Properties.AlarmName));
    expect(names.filter((n) => n.endsWith('-ConnectionsPostsThrottled') || n.endsWith('-TableThrottles'))).toHaveLength(
      2,
    );
  });

  it('publish to an encrypted, TLS-only topic CloudWatch may use', () => {
    const { template } = realtime[0] as (typeof realtime)[number];
    const [[, topic] = []] = resourcesOf(template, 'AWS::SNS::Topic');
    expect(topic?.Properties.KmsMasterKeyId).toBeDefined();
    const policy = JSON.stringify(resourcesOf(template, 'AWS::SNS::TopicPolicy').map(([, r]) => r.Properties));
    expect(policy).toContain('aws:SecureTransport');
    expect(policy).toContain('cloudwatch.amazonaws.com');
  });

  it('go to an existing topic of the region when the stage names one, creating none', () => {
    const arn = 'arn:aws:sns:us-east-1:123456789012:oncall';
    const prod = stageConfig('prod');
    const stage: StageConfig = { ...prod, alarms: { ...prod.alarms, topicArns: { 'us-east-1': arn } } };
    const { template } = synthStack('prod', 'us-east-1', { stage });
    expect(resourcesOf(template, 'AWS::SNS::Topic')).toEqual([]);
    for (const alarm of alarmsOf(template)) expect(alarm.Properties.AlarmActions).toEqual([arn]);
  });

  it('subscribe the configured emails to the topic the stack creates', () => {
    const dev = stageConfig('dev');
    const stage: StageConfig = { ...dev, alarms: { ...dev.alarms, emails: ['oncall@example.com'] } };
    const { template } = synthStack('dev', 'eu-west-1', { stage });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  });
});

describe('log retention', () => {
  it('is set on every log group of every stack', () => {
    const groups = templates.flatMap(({ name, template }) =>
      resourcesOf(template, 'AWS::Logs::LogGroup').map(([id, r]) => ({ name, id, days: r.Properties.RetentionInDays })),
    );
    expect(groups.length).toBeGreaterThan(0);
    expect(groups.filter((g) => typeof g.days !== 'number')).toEqual([]);
  });

  it("is the stage's logRetentionDays", () => {
    for (const stack of app.node.children.filter((c): c is Stack => c instanceof Stack)) {
      const stage = stacks.find((s) => stack.stackName.startsWith(s.stackName))?.stage;
      const days = resourcesOf(Template.fromStack(stack), 'AWS::Logs::LogGroup').map(
        ([, r]) => r.Properties.RetentionInDays,
      );
      expect(new Set(days)).toEqual(new Set([stage?.logRetentionDays]));
    }
  });

  it('covers every Lambda function, custom resource providers included: each logs to a group of the stack', () => {
    for (const { name, template } of templates) {
      const groups = new Set(resourcesOf(template, 'AWS::Logs::LogGroup').map(([id]) => id));
      for (const [id, fn] of resourcesOf(template, 'AWS::Lambda::Function')) {
        const logGroup = (fn.Properties.LoggingConfig as { LogGroup?: { Ref?: string } } | undefined)?.LogGroup;
        expect({ stack: name, fn: id, logsTo: groups.has(logGroup?.Ref ?? '') }).toEqual({
          stack: name,
          fn: id,
          logsTo: true,
        });
      }
    }
  });
});

describe('the alarms configuration', () => {
  const base = cdkJsonContext.tenantcast as { stages: Record<string, Record<string, unknown>> };
  const withAlarms = (stage: string, alarms: unknown) => ({
    stages: { [stage]: { ...base.stages[stage], alarms } },
  });
  const problemsOf = (raw: unknown): string[] => {
    try {
      parseConfig(raw);
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
  };

  it('defaults to a created topic, 5% errors and 1 s p99', () => {
    const [stage] = parseConfig(withAlarms('dev', undefined)).stages;
    expect(stage?.alarms).toEqual({ emails: [], errorRatePercent: 5, deliveryLatencyP99Ms: 1000 });
  });

  it('takes one topic ARN for a single-region stage, and a map by region for several', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:oncall';
    expect(parseConfig(withAlarms('dev', { topicArn: arn })).stages[0]?.alarms.topicArns).toEqual({
      'eu-west-1': arn,
    });
    const byRegion = {
      'eu-west-1': arn,
      'us-east-1': 'arn:aws:sns:us-east-1:123456789012:oncall',
    };
    expect(parseConfig(withAlarms('prod', { topicArn: byRegion })).stages[0]?.alarms.topicArns).toEqual(byRegion);
  });

  it.each([
    [
      { topicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall' },
      "stage 'prod': alarms.topicArn for region 'us-east-1' is in region 'eu-west-1' (got \"arn:aws:sns:eu-west-1:123456789012:oncall\"); alarms publish to topics of their own region only",
    ],
    [
      { topicArn: { 'eu-west-1': 'arn:aws:sns:eu-west-1:123456789012:oncall' } },
      "stage 'prod': alarms.topicArn has no topic for region 'us-east-1'",
    ],
    [
      { topicArn: { 'eu-west-1': 'oncall', 'us-east-1': 'arn:aws:sns:us-east-1:123456789012:oncall' } },
      'stage \'prod\': alarms.topicArn must be an SNS topic ARN such as "arn:aws:sns:eu-west-1:123456789012:alarms" (got "oncall")',
    ],
    [
      { email: 'not-an-address' },
      'stage \'prod\': alarms.email must be an email address or a list of them (got "not-an-address")',
    ],
    [{ errorRatePercent: 0 }, "stage 'prod': alarms.errorRatePercent must be a number above 0 and at most 100 (got 0)"],
    [
      { deliveryLatencyP99Ms: '1s' },
      'stage \'prod\': alarms.deliveryLatencyP99Ms must be a positive number of milliseconds (got "1s")',
    ],
    [
      { pager: true },
      "stage 'prod': alarms has an unknown field 'pager' (known: topicArn, email, errorRatePercent, deliveryLatencyP99Ms)",
    ],
  ])('rejects %j saying what was given', (alarms, message) => {
    expect(problemsOf(withAlarms('prod', alarms))).toEqual([message]);
  });

  it('refuses emails next to an existing topic: they would subscribe to a topic the stack does not own', () => {
    const problems = problemsOf(
      withAlarms('dev', { topicArn: 'arn:aws:sns:eu-west-1:123456789012:oncall', email: 'oncall@example.com' }),
    );
    expect(problems).toEqual([expect.stringContaining('alarms.email subscribes to the topic the stack creates')]);
  });
});
