/**
 * How the broadcaster cuts one SQS FIFO batch into units, each processed as one, and how a unit's result becomes its
 * records' outcomes. Pure: the records, the stage topology and the delivering functions are passed in.
 *
 * A unit is consecutive published messages of one tenant's group (coalesced and packed together: a "run"),
 * consecutive replicas of one (docs/multi-region.md), or a single replay request, unparseable record or poison
 * message.
 */
import { type DeliveryMessage, isReplayRequest, QueueMessage } from './delivery.ts';
import { isPermanent } from './poison.ts';
import { publishDataProblem } from './publish-data.ts';
import { isReplica, ReplicaMessage, replicaProblem, type StageTopology } from './replication.ts';

/** What a unit needs of an SQS record. */
export interface UnitRecord {
  readonly messageId: string;
  readonly body: string;
  readonly attributes: { readonly MessageGroupId?: string };
}

export type Unit<R extends UnitRecord> =
  | { readonly kind: 'run'; readonly messages: DeliveryMessage[]; readonly records: R[] }
  | { readonly kind: 'replicas'; readonly replicas: ReplicaMessage[]; readonly records: R[] }
  /**
   * A replay request (`replayFor`: the connection it serves), or a record that is no delivery message (its delivery
   * sets it aside).
   */
  | { readonly kind: 'other'; readonly records: [R]; readonly replayFor?: string }
  /** A published message (or replica) that breaks the data rules (it bypassed the publish paths' checks). */
  | { readonly kind: 'poison'; readonly records: [R]; readonly reason: string };

/** Each record's error after its unit ran (absent: the record succeeded). */
export type Outcome = Map<string, unknown>;

/** A replica from the tenant's home region (docs/multi-region.md), or undefined for anything else. */
function replicaOf(body: string): ReplicaMessage | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return isReplica(parsed) ? ReplicaMessage.parse(parsed) : undefined;
  } catch {
    return undefined;
  }
}

function queueMessageOf(body: string): QueueMessage | undefined {
  try {
    return QueueMessage.parse(JSON.parse(body));
  } catch {
    return undefined;
  }
}

/** Ends every open run of queue message group `group` (their keys start `<group>\n`): what comes next starts anew. */
function closeRuns(runs: Map<string, unknown>, group: string): void {
  for (const key of runs.keys()) if (key.startsWith(`${group}\n`)) runs.delete(key);
}

/**
 * The batch's units in the order their first records came. A run is one tenant's group as the messages name it, not
 * the queue's message group: a run is sequenced and delivered as its first message's group, so two groups meeting in
 * one message group never share one. Anything else between two messages of a message group ends its open run.
 */
export function batchUnits<R extends UnitRecord>(records: readonly R[], topology: StageTopology): Unit<R>[] {
  const units: Unit<R>[] = [];
  const runs = new Map<string, { messages: DeliveryMessage[]; records: R[] }>();
  const replicaRuns = new Map<string, { replicas: ReplicaMessage[]; records: R[] }>();
  for (const record of records) {
    const group = record.attributes.MessageGroupId ?? '';
    // Consecutive replicas of a group are one run too, delivered (coalesced, packed) like published messages.
    const replica = replicaOf(record.body);
    if (replica !== undefined) {
      closeRuns(runs, group);
      const refused = replicaProblem(replica, topology) ?? publishDataProblem(replica.message.data)?.message;
      if (refused !== undefined) {
        closeRuns(replicaRuns, group);
        units.push({ kind: 'poison', records: [record], reason: `replica of ${replica.message.id}: ${refused}` });
        continue;
      }
      const key = `${group}\n${replica.message.tenantId}\n${replica.message.group}`;
      let run = replicaRuns.get(key);
      if (run === undefined) {
        run = { replicas: [], records: [] };
        replicaRuns.set(key, run);
        units.push({ kind: 'replicas', ...run });
      }
      run.replicas.push(replica);
      run.records.push(record);
      continue;
    }
    closeRuns(replicaRuns, group);
    const parsed = queueMessageOf(record.body);
    if (parsed === undefined || isReplayRequest(parsed)) {
      closeRuns(runs, group);
      units.push(
        parsed === undefined
          ? { kind: 'other', records: [record] }
          : { kind: 'other', records: [record], replayFor: parsed.connectionId },
      );
      continue;
    }
    const key = `${group}\n${parsed.tenantId}\n${parsed.group}`;
    const problem = publishDataProblem(parsed.data);
    if (problem !== undefined) {
      runs.delete(key);
      units.push({
        kind: 'poison',
        records: [record],
        reason: `message ${parsed.id}: ${problem.code} ${problem.message}`,
      });
      continue;
    }
    let run = runs.get(key);
    if (run === undefined) {
      run = { messages: [], records: [] };
      runs.set(key, run);
      units.push({ kind: 'run', ...run });
    }
    run.messages.push(parsed);
    run.records.push(record);
  }
  return units;
}

/**
 * For each replay request among `units`, the replay requests to start with it: the ones of its message group that
 * follow it with nothing else of that group in between, each for another connection (a second request for the same
 * connection, and anything after it, waits its turn). Each serves only its own connection's wait, reading history
 * that every message before them in the group already reached, and no live run is reordered around them, so running
 * them together changes what nobody receives; it spares the group's live messages waiting for them one by one (a
 * reconnect storm subscribes hundreds of members with `since` at once, each a request on the group's stream, ~10-25
 * ms each here; and each refused pass of a client that does not read holds the stream for its post and retry).
 * A unit that is no replay request is missing from the map; one alone in its chain starts alone.
 */
export function replayCompanions<R extends UnitRecord>(units: readonly Unit<R>[]): Map<Unit<R>, Unit<R>[]> {
  const companions = new Map<Unit<R>, Unit<R>[]>();
  const open = new Map<string, { together: Unit<R>[]; connections: Set<string> }>();
  for (const unit of units) {
    const group = unit.records[0]?.attributes.MessageGroupId ?? '';
    const connection = unit.kind === 'other' ? unit.replayFor : undefined;
    if (connection === undefined) {
      open.delete(group);
      continue;
    }
    let chain = open.get(group);
    if (chain === undefined || chain.connections.has(connection)) {
      chain = { together: [], connections: new Set() };
      open.set(group, chain);
    }
    chain.together.push(unit);
    chain.connections.add(connection);
    companions.set(unit, chain.together);
  }
  return companions;
}

/**
 * Each record's starter (by SQS message id): its unit, started once by `start`, with the replay requests that start
 * together with it (`replayCompanions`). `startedAhead` settles once the units started before their own record's turn
 * have, with each of their records' results (by SQS message id: its error, or undefined when it succeeded): a record
 * skipped behind a failure of its group is never handled, so its work must neither run on into the next invocation
 * nor have its result lost (the batch handler settles such records with them).
 */
export function recordStarters<R extends UnitRecord>(
  units: readonly Unit<R>[],
  start: (unit: Unit<R>) => Promise<Outcome>,
): {
  readonly starters: Map<string, () => Promise<Outcome>>;
  readonly startedAhead: () => Promise<ReadonlyMap<string, unknown>>;
} {
  const started = new Map<Unit<R>, Promise<Outcome>>();
  const run = (unit: Unit<R>) => {
    let outcome = started.get(unit);
    if (outcome === undefined) {
      outcome = start(unit);
      started.set(unit, outcome);
    }
    return outcome;
  };
  const ahead: Promise<[string, unknown][]>[] = [];
  const resultsOf = (unit: Unit<R>, outcome: Promise<Outcome>) =>
    outcome.then(
      (errors) =>
        unit.records.map((r): [string, unknown] => [
          r.messageId,
          errors.has(r.messageId) ? (errors.get(r.messageId) ?? new Error('failed')) : undefined,
        ]),
      (err: unknown) => unit.records.map((r): [string, unknown] => [r.messageId, err ?? new Error('failed')]),
    );
  const companions = replayCompanions(units);
  const starters = new Map<string, () => Promise<Outcome>>();
  for (const unit of units) {
    const together = companions.get(unit) ?? [unit];
    const starter = () => {
      for (const other of together) {
        if (other !== unit && !started.has(other)) ahead.push(resultsOf(other, run(other)));
      }
      return run(unit);
    };
    for (const record of unit.records) starters.set(record.messageId, starter);
  }
  return {
    starters,
    startedAhead: async () => new Map((await Promise.all(ahead)).flat()),
  };
}

/** Every record of a unit shares its result. */
export async function allOrNothing(records: readonly UnitRecord[], work: Promise<void>): Promise<Outcome> {
  try {
    await work;
    return new Map();
  } catch (err) {
    return new Map(records.map((r) => [r.messageId, err]));
  }
}

/** Delivers messages with their records; `redelivered` as the batch says, or true for a message sent again alone. */
export type DeliverRun<R> = (
  messages: readonly DeliveryMessage[],
  records: readonly R[],
  redelivered: boolean,
) => Promise<void>;

/**
 * A run delivered as one; if it fails for a permanent reason (lambdas/core/poison.ts), its messages are delivered
 * one at a time, in order, so only the poison one fails (and is set aside) and the rest of the group goes on. A
 * transient failure fails the message and every one after it (SQS redelivers them in order).
 */
export async function deliverIsolating<R extends UnitRecord>(
  messages: readonly DeliveryMessage[],
  records: readonly R[],
  redelivered: boolean,
  deliver: DeliverRun<R>,
): Promise<Outcome> {
  const whole = await allOrNothing(records, deliver(messages, records, redelivered));
  const first = whole.values().next().value;
  if (whole.size === 0 || messages.length === 1 || !isPermanent(first)) return whole;
  const outcome: Outcome = new Map();
  let blocked: unknown;
  for (const [i, message] of messages.entries()) {
    const record = records[i] as R;
    if (blocked !== undefined) {
      outcome.set(record.messageId, blocked);
      continue;
    }
    try {
      await deliver([message], [record], true);
    } catch (err) {
      outcome.set(record.messageId, err);
      if (!isPermanent(err)) blocked = err;
    }
  }
  return outcome;
}
