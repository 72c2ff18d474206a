// The child-process half of the benchmark's DynamoDB meter (local/meter.ts keeps the counts in the runtime): asks
// dynalite for `ReturnConsumedCapacity: TOTAL` on requests that did not ask for it, reads the capacity units from the
// answer, removes them again so clients see exactly what they asked for, and reports one record per request.

const CAPACITY_ACTIONS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
]);
const WRITE_ACTIONS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);

const pkOf = (item) => {
  const pk = item?.pk?.S;
  return typeof pk === 'string' ? pk : undefined;
};

/** The partition key a DynamoDB request names (Key, Item, a key condition's value, or a batch's first item). */
export function partitionKeyOf(request) {
  const direct = pkOf(request.Key) ?? pkOf(request.Item);
  if (direct !== undefined) return direct;
  const values = request.ExpressionAttributeValues;
  if (typeof request.KeyConditionExpression === 'string' && typeof values === 'object' && values !== null) {
    const first = Object.values(values).find((v) => typeof v?.S === 'string');
    if (first !== undefined) return first.S;
  }
  const batch = typeof request.RequestItems === 'object' && request.RequestItems !== null ? request.RequestItems : {};
  for (const table of Object.values(batch)) {
    const first = Array.isArray(table) ? table[0] : table?.Keys?.[0];
    const pk = pkOf(first?.PutRequest?.Item) ?? pkOf(first?.DeleteRequest?.Key) ?? pkOf(first);
    if (pk !== undefined) return pk;
  }
  return undefined;
}

/**
 * Prepares one request for metering. `request` is the parsed body (undefined if not JSON); the body dynalite should
 * read comes back as `body` (rewritten only when capacity had to be asked for). `finish(statusCode, answer)` turns
 * dynalite's answer into the record for the runtime and the answer for the client.
 */
export function meterRequest(action, request, body) {
  const record = { action, pk: undefined, units: undefined, write: WRITE_ACTIONS.has(action) };
  let injected = false;
  if (CAPACITY_ACTIONS.has(action) && typeof request === 'object' && request !== null) {
    record.pk = partitionKeyOf(request);
    if (request.ReturnConsumedCapacity === undefined || request.ReturnConsumedCapacity === 'NONE') {
      body = Buffer.from(JSON.stringify({ ...request, ReturnConsumedCapacity: 'TOTAL' }));
      injected = true;
    }
  }
  const finish = (statusCode, answer) => {
    if (typeof answer !== 'string' || !CAPACITY_ACTIONS.has(action) || statusCode >= 300) return { record, answer };
    try {
      const parsed = JSON.parse(answer);
      const consumed = parsed.ConsumedCapacity;
      const entries = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
      if (entries.length > 0) {
        record.units = entries.reduce(
          (sum, c) => sum + ((record.write ? c.WriteCapacityUnits : c.ReadCapacityUnits) ?? c.CapacityUnits ?? 0),
          0,
        );
      }
      if (!injected) return { record, answer };
      delete parsed.ConsumedCapacity;
      return { record, answer: JSON.stringify(parsed), rewritten: true };
    } catch {
      return { record, answer };
    }
  };
  return { body, finish };
}
