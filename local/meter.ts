/**
 * Metering for the DynamoDB stand-in: counts requests by action (X-Amz-Target) and the capacity units dynalite
 * reports. The local DynamoDB runs in a child process (local/dynamo.ts); with `startDynamo({ meter })` it asks dynalite
 * for `ReturnConsumedCapacity: TOTAL` on requests that did not ask for it, removes the answer again so clients see
 * exactly what they asked for, and sends one record per request over the IPC channel (local/dynamo-meter.mjs), before
 * it answers the client. The record may still be processed here after the client has its answer (two channels, no
 * order between them): `settled()` waits for it. This side keeps the counts. The benchmark turns them into a modeled
 * bill.
 */

export interface MeterCounts {
  readonly requests: Record<string, number>;
  readonly readUnits: number;
  readonly writeUnits: number;
  /**
   * Capacity units by action and item kind: the partition key with its variable parts (tenant, group, connection
   * ids) replaced by `*`, e.g. `PutItem T#*#G#*#H` (a history item). Where the bill comes from.
   */
  readonly unitsByKind: Record<string, number>;
}

/** What the DynamoDB child reports for one metered request (local/dynamo-meter.mjs). */
export interface MeterRecord {
  readonly action: string;
  /** The partition key the request names, if a string. */
  readonly pk?: string | undefined;
  /** Capacity units DynamoDB reported; absent when it reported none (an error, an action without capacity). */
  readonly units?: number | undefined;
  /** Write units (PutItem, UpdateItem, DeleteItem, BatchWriteItem) rather than read units. */
  readonly write: boolean;
}

/** `T#acme#G#chat:x#H` → `T#*#G#*#H`: upper-case key markers stay, values become `*`. */
export function itemKindOf(pk: string): string {
  return pk
    .split('#')
    .map((part) => (/^[A-Z]{1,8}$/.test(part) ? part : '*'))
    .join('#');
}

export interface Meter {
  readonly endpoint: string;
  /**
   * Resolves once every request the DynamoDB child has answered so far is counted: its records come over an IPC
   * channel that the client's HTTP answer does not wait for in this process, so read `counts` after this.
   */
  settled(): Promise<void>;
  counts(): MeterCounts;
  reset(): void;
  close(): Promise<void>;
}

/** A meter fed by records: `record` is called for each request the DynamoDB child reports. */
export function createMeter(
  endpoint: string,
  settled: () => Promise<void> = async () => undefined,
): Meter & { record(record: MeterRecord): void } {
  const requests = new Map<string, number>();
  const unitsByKind = new Map<string, number>();
  let readUnits = 0;
  let writeUnits = 0;
  return {
    endpoint,
    settled,
    record({ action, pk, units, write }) {
      requests.set(action, (requests.get(action) ?? 0) + 1);
      if (units === undefined) return;
      if (write) writeUnits += units;
      else readUnits += units;
      const kind = pk === undefined ? action : `${action} ${itemKindOf(pk)}`;
      unitsByKind.set(kind, (unitsByKind.get(kind) ?? 0) + units);
    },
    counts: () => ({
      requests: Object.fromEntries(requests),
      readUnits,
      writeUnits,
      unitsByKind: Object.fromEntries(unitsByKind),
    }),
    reset: () => {
      requests.clear();
      unitsByKind.clear();
      readUnits = 0;
      writeUnits = 0;
    },
    // The child stops metering when it closes.
    close: async () => undefined,
  };
}
