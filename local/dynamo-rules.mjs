// AWS DynamoDB request rules that dynalite 4.0.0 does not enforce, checked in the DynamoDB child process
// (local/dynamo-server.mjs) before dynalite sees a request. Hand-written: no kept library validates DynamoDB's wire
// requests, and dynalite (the stand-in being patched) has no hook for it. Plain .mjs so the child starts without a
// TypeScript loader.
//
// What dynalite already refuses as AWS does is not repeated here (tested in local/dynamo.test.ts): items over 400 KB,
// numbers over 38 significant digits, duplicate keys in BatchGetItem and BatchWriteItem ("Provided list of item keys
// contains duplicates").

/**
 * Nesting: "DynamoDB supports nested attributes up to 32 levels deep"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-attributes). The
 * top-level attribute is level 1, so a value inside 31 maps or lists is the deepest accepted and one inside 32 is
 * refused, with this message, wherever an AttributeValue appears: items, keys, ExpressionAttributeValues, legacy
 * conditions (captured against real DynamoDB in eu-west-2 and us-east-1, 2026: github.com/nubo-db/dynamodb-conformance
 * tests/tier1/.../nestingDepth and captures/2026-08-12-batch-empty-and-nesting.json).
 */
export const MAX_NESTING_LEVELS = 32;
export const NESTING_MESSAGE =
  'Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit';

/**
 * Empty attribute names: DynamoDB refuses an attribute name that is the empty string wherever a request carries one
 * (an item's attribute, a map key at any depth, a key, an ExpressionAttributeNames value, legacy conditions and
 * AttributeUpdates) with "Empty attribute name"; an ExpressionAttributeNames value is reported as "... for key #n"
 * (captured against real DynamoDB, October 2026, as documented by the dynoxide emulator's src/empty_names.rs).
 * dynalite stores such items as they are.
 */
export const EMPTY_NAME_MESSAGE = 'Empty attribute name';

/** PutItem, UpdateItem and DeleteItem wrap these messages in the validation envelope; the reads answer them bare. */
const ENVELOPED = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);

const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);
const entriesOf = (value) => (isObject(value) ? Object.entries(value) : []);
const listOf = (value) => (Array.isArray(value) ? value : []);

/**
 * What a request carries, by kind: `attributes` are [name, AttributeValue] pairs (items, keys), `conditions` are
 * [name, {Value?, AttributeValueList?}] pairs (Expected, AttributeUpdates, KeyConditions, QueryFilter, ScanFilter),
 * `values` are the ExpressionAttributeValues. Shapes dynalite would refuse are skipped: dynalite answers them.
 */
function partsOf(action, request) {
  const attributes = [];
  const conditions = [];
  const addMap = (map) => attributes.push(...entriesOf(map));
  addMap(request.Item);
  addMap(request.Key);
  addMap(request.ExclusiveStartKey);
  for (const field of ['Expected', 'AttributeUpdates', 'KeyConditions', 'QueryFilter', 'ScanFilter']) {
    conditions.push(...entriesOf(request[field]));
  }
  if (action === 'BatchGetItem') {
    for (const [, table] of entriesOf(request.RequestItems)) {
      if (isObject(table)) for (const key of listOf(table.Keys)) addMap(key);
    }
  }
  if (action === 'BatchWriteItem') {
    for (const [, writes] of entriesOf(request.RequestItems)) {
      for (const write of listOf(writes)) {
        if (!isObject(write)) continue;
        if (isObject(write.PutRequest)) addMap(write.PutRequest.Item);
        if (isObject(write.DeleteRequest)) addMap(write.DeleteRequest.Key);
      }
    }
  }
  const values = entriesOf(request.ExpressionAttributeValues).map(([, value]) => value);
  return { attributes, conditions, values };
}

/** Every AttributeValue of a condition entry: its Value and its AttributeValueList. */
function conditionValues(condition) {
  if (!isObject(condition)) return [];
  return [...(condition.Value === undefined ? [] : [condition.Value]), ...listOf(condition.AttributeValueList)];
}

/** The values directly inside a map or list AttributeValue. */
function childrenOf(value) {
  if (!isObject(value)) return [];
  return [...entriesOf(value.M).map(([, child]) => child), ...listOf(value.L)];
}

/** True if `value`, at `level`, is nested deeper than AWS allows. Stops at the limit, so it cannot overflow. */
function tooDeep(value, level) {
  if (level > MAX_NESTING_LEVELS) return true;
  return childrenOf(value).some((child) => tooDeep(child, level + 1));
}

/** True if a map inside `value` has an empty key (called only on values within the nesting limit). */
function hasEmptyName(value) {
  if (!isObject(value)) return false;
  if (entriesOf(value.M).some(([name]) => name === '')) return true;
  return childrenOf(value).some(hasEmptyName);
}

/**
 * The message of the first AWS rule the request breaks (nesting first, then empty names), in AWS's wording, or
 * undefined. `action` is the X-Amz-Target operation (`PutItem`), `request` the parsed JSON body.
 */
export function ruleBroken(action, request) {
  if (!isObject(request)) return undefined;
  const { attributes, conditions, values } = partsOf(action, request);
  const allValues = [
    ...attributes.map(([, value]) => value),
    ...conditions.flatMap(([, condition]) => conditionValues(condition)),
    ...values,
  ];
  const envelope = (message) => (ENVELOPED.has(action) ? `1 validation error detected: ${message}` : message);
  if (allValues.some((value) => tooDeep(value, 1))) return envelope(NESTING_MESSAGE);
  const names = [...attributes, ...conditions].map(([name]) => name);
  if (names.includes('') || allValues.some(hasEmptyName)) return envelope(EMPTY_NAME_MESSAGE);
  const emptyAlias = entriesOf(request.ExpressionAttributeNames).find(([, name]) => name === '');
  if (emptyAlias !== undefined) {
    return envelope(`ExpressionAttributeNames contains invalid value: ${EMPTY_NAME_MESSAGE} for key ${emptyAlias[0]}`);
  }
  return undefined;
}
