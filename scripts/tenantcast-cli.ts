/**
 * The admin CLI, `npx tenantcast <command>` (docs/cli.md): tenants, connections, publish, usage and dead-letter
 * queues, against the local runtime by default or a deployed stage with `--stage/--region/--profile`
 * (scripts/cli-target.ts). The tenant commands, `usage` and `connections disconnect` are the tenants CLI's
 * (scripts/tenants-cli.ts); this module adds the rest and one help tree.
 */
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { REDRIVE_OF_ATTRIBUTE, setAsideAttributes } from '../lambdas/core/poison.ts';
import { TenantConnections } from '../lambdas/core/revocation.ts';
import { TenantDirectory } from '../lambdas/core/tenants.ts';
import { queues as manifestQueues } from '../lambdas/manifest.ts';
import { Publisher } from '../lambdas/sdk/publisher.ts';
import { noProgress } from './cli-progress.ts';
import { DEFAULT_ENDPOINTS_FILE, type QueueUrls, resolveTarget, type Target } from './cli-target.ts';
import { type CliIo, failure, knownTenant, runTenantsCli, table } from './tenants-cli.ts';

const targetHelp = `Target options (every command):
  --endpoints <file>   the local runtime's endpoints file (default ${DEFAULT_ENDPOINTS_FILE}, written by npm start)
  --stage <stage> --region <region> [--profile <name>]
                       a deployed stage instead: reads the CloudFormation outputs of tenantcast-<stage>-<region>
                       and tenantcast-<stage>-<region>-data, with the profile's credentials (default chain if none)
  -h, --help           help (also after any command)`;

const helps = {
  root: `Usage: tenantcast <command> [options]

Commands:
  tenants create|set-rules|refresh-schema|list|reindex
                                       onboard tenants, set their rules and limits (tenantcast tenants --help)
  connections list <tenantId> [--user <userId>]
                                       the tenant's live connections
  connections disconnect <tenantId> [--user <userId>]
                                       close them (revocation)
  publish <tenantId> <group> <json> [--from <sender>]
                                       publish to a group through the delivery queue (server SDK)
  usage <tenantId> [--from yyyy-mm-dd] [--to yyyy-mm-dd]
                                       metered usage per day
  dlq show [queue]                     dead-letter queue depths; with a queue, its first messages
  dlq redrive [queue] [--max <n>]      move dead-lettered messages back to their source queue

${targetHelp}
`,
  connections: `Usage: tenantcast connections <list|disconnect> <tenantId> [--user <userId>] [target options]

  list        the tenant's live connections (or one user's): id, user, connected at
  disconnect  closes them through the @connections API; $disconnect removes their items

${targetHelp}
`,
  publish: `Usage: tenantcast publish <tenantId> <group> <json> [--from <sender>] [target options]

Publishes <json> (a JSON value) to <group> of the tenant through the delivery queue with the server SDK
(lambdas/sdk/publisher.ts): the same checks, FIFO parameters and delivery as a WebSocket publish. Prints the id.
  --from <sender>   the message's sender (default 'server')

${targetHelp}
`,
  usage: `Usage: tenantcast usage <tenantId> [--from yyyy-mm-dd] [--to yyyy-mm-dd] [target options]

Metered usage per day (connections, connection-minutes, frames in, deliveries out, entity reads and writes); the
last 30 days by default. docs/security.md.

${targetHelp}
`,
  dlq: `Usage: tenantcast dlq <show|redrive> [queue] [--max <n>] [target options]

Queues: ${Object.keys(manifestQueues).join(', ')} (default: all).
  show      messages in each dead-letter queue; with one queue, also up to 10 of its messages
  redrive   receives from the dead-letter queue, sends each message back to its source queue (same body,
            attributes and message group; deduplication id redrive-<DLQ message id>), then deletes it
  --max <n> redrive at most n messages per queue (default all)

${targetHelp}
`,
} as const;

/** What a command of this CLI gets once its arguments parsed and its target is resolved. */
interface Command {
  readonly io: CliIo;
  readonly progress: NonNullable<CliIo['progress']>;
  readonly values: ReturnType<typeof parse>['values'];
  readonly positionals: readonly string[];
  readonly target: Awaited<ReturnType<typeof resolveTarget>>;
  /** Writes the message and the command's help to stderr; returns exit code 2. */
  usage(message: string): number;
}

async function connectionsList({ io, values, positionals, target, usage }: Command): Promise<number> {
  const [sub, tenantId] = positionals;
  if (sub !== 'list')
    return usage(sub === undefined ? 'connections needs list or disconnect' : `unknown subcommand '${sub}'`);
  if (tenantId === undefined) return usage('connections list needs <tenantId>');
  const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient(target.clientConfig('dynamodb')));
  // "0 connections" for a mistyped tenant would mislead: say that it does not exist.
  const tenants = new TenantDirectory({ client: documentClient, tableName: target.tableName });
  if (!(await knownTenant(io, tenants, tenantId))) return 1;
  const found = await new TenantConnections({ client: documentClient, tableName: target.tableName }).list(
    tenantId,
    values.user,
  );
  found.sort((a, b) => a.connectedAt - b.connectedAt);
  io.out(`${tenantId}${values.user ? ` user ${values.user}` : ''}: ${found.length} live connection(s)`);
  io.out(
    table(
      ['CONNECTION', 'USER', 'CONNECTED AT'],
      found.map((c) => [c.connectionId, c.userId, new Date(c.connectedAt).toISOString()]),
    ),
  );
  return 0;
}

async function publish({ io, values, positionals, target, usage }: Command): Promise<number> {
  const [tenantId, group, json] = positionals;
  if (tenantId === undefined || group === undefined || json === undefined) {
    return usage('publish needs <tenantId> <group> <json>');
  }
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    return usage(`<json> is not JSON (${(err as Error).message}); got ${json}`);
  }
  // A mistyped tenant would be "published" to nobody and metered: say that it does not exist.
  const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient(target.clientConfig('dynamodb')));
  const tenants = new TenantDirectory({ client: documentClient, tableName: target.tableName });
  if (!(await knownTenant(io, tenants, tenantId))) return 1;
  const delivery = queueOf(target, 'delivery');
  const publisher = new Publisher({
    queueUrl: delivery.url,
    client: new SQSClient(target.clientConfig('sqs')),
  });
  const { id } = await publisher.publish({ tenantId, group, data, ...(values.from && { from: values.from }) });
  io.out(`published ${id} to ${tenantId} ${group}`);
  return 0;
}

async function dlq({ io, progress, values, positionals, target, usage }: Command): Promise<number> {
  const [sub, queue] = positionals;
  if (sub !== 'show' && sub !== 'redrive') {
    return usage(sub === undefined ? 'dlq needs show or redrive' : `unknown subcommand '${sub}'`);
  }
  const names = queue === undefined ? Object.keys(target.queues) : [queue];
  for (const name of names) queueOf(target, name);
  const max = values.max === undefined ? Number.POSITIVE_INFINITY : Number(values.max);
  if (!(max > 0)) return usage(`--max must be a positive number; got ${values.max}`);
  const sqs = new SQSClient(target.clientConfig('sqs'));
  if (sub === 'show') {
    const rows: string[][] = [];
    for (const name of names) rows.push([name, String(await depth(sqs, queueOf(target, name).dlqUrl))]);
    io.out(table(['QUEUE', 'DEAD-LETTERED'], rows));
    if (queue !== undefined) {
      const peeked = await peek(sqs, queueOf(target, queue).dlqUrl);
      if (peeked.length > 0) {
        io.out('');
        io.out(
          table(
            ['MESSAGE', 'GROUP', 'SENT', 'REASON', 'BODY'],
            peeked.map((m) => [
              m.MessageId ?? '-',
              m.Attributes?.MessageGroupId ?? '-',
              m.Attributes?.SentTimestamp ? new Date(Number(m.Attributes.SentTimestamp)).toISOString() : '-',
              reasonOfDeadLetter(m),
              abbreviate(m.Body ?? '', 80),
            ]),
          ),
        );
      }
    }
    return 0;
  }
  const rows: string[][] = [];
  for (const name of names) {
    const urls = queueOf(target, name);
    const bar = progress(`redriving ${name}`);
    bar.setTotal(Math.min(max, await depth(sqs, urls.dlqUrl)));
    const moved = await redrive(sqs, urls, max, () => bar.tick()).finally(() => bar.done());
    rows.push([name, String(moved)]);
  }
  io.out(table(['QUEUE', 'REDRIVEN'], rows));
  return 0;
}

const commands = { connections: connectionsList, publish, dlq } as const;

/** Runs `tenantcast <argv>`; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  const progress = io.progress ?? noProgress;
  switch (command) {
    case undefined:
      io.err(helps.root);
      return 2;
    case '--help':
    case '-h':
    case 'help':
      io.out(helps.root);
      return 0;
    case 'tenants':
      return runTenantsCli(rest, { ...io, prog: 'tenantcast tenants' });
    case 'usage':
      if (wantsHelp) return out(io, helps.usage);
      // Said here, with this command's help (the tenants CLI's would name its own commands).
      if (tenantOf(rest) === undefined) {
        io.err(`usage needs <tenantId>\n\n${helps.usage}`);
        return 2;
      }
      return runTenantsCli(['usage', ...rest], { ...io, prog: 'tenantcast' });
    case 'connections':
    case 'publish':
    case 'dlq':
      break;
    default:
      io.err(`unknown command '${command}'\n\n${helps.root}`);
      return 2;
  }
  if (wantsHelp) return out(io, helps[command]);

  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${helps[command]}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const usage = (message: string) => {
    io.err(`${message}\n\n${helps[command]}`);
    return 2;
  };

  if (command === 'connections' && positionals[0] === 'disconnect') {
    if (positionals[1] === undefined) return usage('connections disconnect needs <tenantId>');
    const at = rest.indexOf('disconnect');
    return runTenantsCli(['disconnect', ...rest.slice(0, at), ...rest.slice(at + 1)], { ...io, prog: 'tenantcast' });
  }

  try {
    const target = await resolveTarget({
      endpoints: values.endpoints,
      stage: values.stage,
      region: values.region,
      profile: values.profile,
      cwd: io.cwd,
      ...(io.cloudFormation !== undefined && { cloudFormation: io.cloudFormation }),
    });
    return await commands[command]({ io, progress, values, positionals, target, usage });
  } catch (err) {
    return failure(io, err);
  }
}

function out(io: CliIo, text: string): number {
  io.out(text);
  return 0;
}

/** The first positional of a `usage` command line (its options' values are not positionals). */
function tenantOf(argv: readonly string[]): string | undefined {
  const text = { type: 'string' } as const;
  const options = { from: text, to: text, endpoints: text, stage: text, region: text, profile: text };
  return parseArgs({ args: [...argv], allowPositionals: true, strict: false, options }).positionals[0];
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      from: { type: 'string' },
      max: { type: 'string' },
      endpoints: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      profile: { type: 'string' },
    },
  });
}

function queueOf(target: Target, name: string): QueueUrls {
  const urls = target.queues[name];
  if (urls === undefined) {
    throw new Error(`unknown queue '${name}'; the target has ${Object.keys(target.queues).join(', ') || 'none'}`);
  }
  return urls;
}

async function depth(sqs: SQSClient, url: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

/**
 * Why a message is in a dead-letter queue: the reason the consumer gave when it set the message aside (its
 * `failureReason` attribute, lambdas/shared/set-aside.ts), or SQS's own move after too many failed receives.
 */
function reasonOfDeadLetter(message: Message): string {
  const reason = message.MessageAttributes?.[setAsideAttributes.reason]?.StringValue;
  const by = message.MessageAttributes?.[setAsideAttributes.by]?.StringValue;
  if (reason !== undefined) return abbreviate(`${by ?? 'consumer'}: ${reason}`, 120);
  return `moved by SQS after ${message.Attributes?.ApproximateReceiveCount ?? '?'} receives`;
}

/** Up to 10 messages, left visible (visibility timeout 0): a DLQ has no redrive policy, so receiving is harmless. */
async function peek(sqs: SQSClient, url: string): Promise<Message[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return out.Messages ?? [];
}

/**
 * Moves dead-lettered messages back to the source queue by hand (receive, send, delete), because the local SQS
 * stand-in has no StartMessageMoveTask, and this way both targets run the same code. At least once: a crash between
 * send and delete sends a message again, with the same deduplication id (`redrive-<DLQ message id>`), which a FIFO
 * queue drops within its 5-minute window and the consumers' idempotency after it.
 */
async function redrive(sqs: SQSClient, urls: QueueUrls, max: number, onMoved: () => void): Promise<number> {
  const fifo = urls.url.endsWith('.fifo');
  let moved = 0;
  while (moved < max) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: urls.dlqUrl,
        MaxNumberOfMessages: Math.min(10, max - moved),
        VisibilityTimeout: 60,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) break;
    for (const message of messages) {
      const attributes: Record<string, MessageAttributeValue> = {};
      for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
        // A set-aside message goes back as it came: without the reason it was set aside for.
        if (name === setAsideAttributes.reason || name === setAsideAttributes.by) continue;
        attributes[name] = {
          DataType: value.DataType,
          ...(value.StringValue !== undefined && { StringValue: value.StringValue }),
          ...(value.BinaryValue !== undefined && { BinaryValue: value.BinaryValue }),
        };
      }
      // What the message was (a redriven one keeps its first id through later redrives): consumers treat it as a
      // redelivery, and the fan-out skips the members a page reached before.
      const before = message.Attributes?.MessageDeduplicationId ?? message.MessageId;
      if (fifo && before !== undefined && attributes[REDRIVE_OF_ATTRIBUTE] === undefined) {
        attributes[REDRIVE_OF_ATTRIBUTE] = { DataType: 'String', StringValue: before };
      }
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: urls.url,
          MessageBody: message.Body ?? '',
          ...(Object.keys(attributes).length > 0 && { MessageAttributes: attributes }),
          ...(fifo && {
            MessageGroupId: message.Attributes?.MessageGroupId ?? 'redrive',
            MessageDeduplicationId: `redrive-${message.MessageId ?? ''}`.slice(0, 128),
          }),
        }),
      );
      await sqs.send(new DeleteMessageCommand({ QueueUrl: urls.dlqUrl, ReceiptHandle: message.ReceiptHandle }));
      moved++;
      onMoved();
    }
  }
  return moved;
}

function abbreviate(text: string, length: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}
