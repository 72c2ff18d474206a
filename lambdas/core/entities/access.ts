/**
 * Entity access rules, applied the same way to HTTP reads, writes and the live change feed:
 *  - a role in `readRoles` may read, a role in `writeRoles` may write (writing implies nothing about reading);
 *  - with a `rowFilter`, a caller without a `bypassRoles` role sees and writes only rows whose filter column equals
 *    its claim (`equalsClaim`) or is one of its claim's values (`inClaim`);
 *  - a rule under `*` applies to every entity without a rule of its own (what a new tenant gets: admin only);
 *  - no rule for an entity: nobody may read or write it (closed by default).
 */
import { createHash } from 'node:crypto';
import { claimValues } from '../audience.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { ENTITY_GROUP_PREFIX } from '../permissions.ts';
import { type EntityCaller, type EntityRule, type EntityRules, type EntitySpec, toEntitySchema } from './model.ts';

/** A tenant's introspected schema (lambdas/core/schema.ts), as `toEntitySchema` reads it. */
type IntrospectedSchema = Parameters<typeof toEntitySchema>[0];

/** The key of the rule for every entity that has none of its own (a new tenant's default: docs/tenants.md). */
export const ANY_ENTITY = '*';

/** The rule for an entity: its own, else the tenant's `*` rule, else none. */
export function ruleOf(rules: EntityRules, entity: string): EntityRule | undefined {
  if (Object.hasOwn(rules, entity)) return rules[entity];
  return Object.hasOwn(rules, ANY_ENTITY) ? rules[ANY_ENTITY] : undefined;
}

/** The rule for an entity, or FORBIDDEN when the tenant has none for it. */
export function ruleFor(rules: EntityRules, entity: string): EntityRule {
  const rule = ruleOf(rules, entity);
  if (rule === undefined) throw new ForbiddenError(`no access rules for entity '${entity}'`);
  return rule;
}

const hasAny = (roles: readonly string[], wanted: readonly string[]) => roles.some((r) => wanted.includes(r));

export function canRead(rule: EntityRule, caller: Pick<EntityCaller, 'roles'>): boolean {
  return hasAny(caller.roles, rule.readRoles);
}

export function canWrite(rule: EntityRule, caller: Pick<EntityCaller, 'roles'>): boolean {
  return hasAny(caller.roles, rule.writeRoles);
}

/**
 * A subscribe to a live feed (`entity:<name>`) is a read of the entity: refused (FORBIDDEN) as `GET` would be, for a
 * caller none of whose roles reads it, so its acks (their seq) and timing tell nothing of changes it may not read
 * (until 2026-12-04 only the role rules were asked; found by an attacking pass). The rule is the one `GET` applies:
 * with a row filter that cannot be applied to the entity's column (`applicableRule`), only the bypass roles read
 * (until 2026-12-04 the feed and presence stayed open to the other read roles, which `GET` answered 403; found by an
 * attacking pass). As `GET`, it answers NOT_FOUND for an entity the schema does not have, and FORBIDDEN for a tenant
 * with no schema (`schema` undefined: real-time only). Other groups pass.
 */
export function assertMayFollow(
  rules: EntityRules | undefined,
  caller: Pick<EntityCaller, 'roles'>,
  group: string,
  schema: IntrospectedSchema | undefined,
): EntityRule | undefined {
  if (!group.startsWith(ENTITY_GROUP_PREFIX)) return undefined;
  const entity = group.slice(ENTITY_GROUP_PREFIX.length);
  // Until 2026-12-05 the feed answered FORBIDDEN for an unknown entity (GET: 404) and acked an admin of a tenant with
  // no schema (GET: 403): the same token got two answers on the two transports.
  if (schema === undefined) throw new ForbiddenError(`tenant has no database: no entity '${entity}'`);
  const introspected = Object.hasOwn(schema.entities, entity) ? schema.entities[entity] : undefined;
  if (introspected === undefined) throw new NotFoundError(`unknown entity '${entity}'`);
  const own = ruleOf(rules ?? {}, entity);
  const spec = toEntitySchema({ entities: { [entity]: introspected } }).entities[entity];
  const rule = own !== undefined && spec !== undefined ? applicableRule(own, spec) : own;
  if (rule === undefined || !canRead(rule, caller)) throw new ForbiddenError(`not allowed to read entity '${entity}'`);
  return rule;
}

/**
 * A `presence` request lists who follows a group. For an entity's live feed it is refused (FORBIDDEN) to a caller
 * a row filter binds (no bypass role): the filter keeps other users' rows from it, and the list would name who follows
 * them and when they are online (until 2026-12-05 it listed every subscriber; found by an attacking pass). Callers
 * who read every row (no row filter, or a bypass role) may ask, as may anyone of any other group the role rules let
 * them subscribe to.
 */
export function assertMayListFollowers(
  rules: EntityRules | undefined,
  caller: Pick<EntityCaller, 'roles'>,
  group: string,
  schema: IntrospectedSchema | undefined,
): void {
  const rule = assertMayFollow(rules, caller, group, schema);
  if (rule?.rowFilter !== undefined && !caller.roles.some((role) => rule.bypassRoles.includes(role))) {
    throw new ForbiddenError(
      `a row filter binds you on entity '${group.slice(ENTITY_GROUP_PREFIX.length)}': its followers are not listed to you`,
    );
  }
}

export function assertCanRead(rule: EntityRule, caller: EntityCaller, entity: string): void {
  if (!canRead(rule, caller)) throw new ForbiddenError(`not allowed to read entity '${entity}'`);
}

export function assertCanWrite(rule: EntityRule, caller: EntityCaller, entity: string): void {
  if (!canWrite(rule, caller)) throw new ForbiddenError(`not allowed to write entity '${entity}'`);
}

/**
 * What restricts the rows a caller may see or write: `undefined` when nothing does (no filter, or a bypass role),
 * otherwise the column and the values it must have (possibly none: then no row matches).
 */
export interface RowRestriction {
  readonly column: string;
  readonly anyOf: readonly string[];
}

export function rowRestriction(rule: EntityRule, caller: EntityCaller): RowRestriction | undefined {
  const filter = rule.rowFilter;
  if (filter === undefined || hasAny(caller.roles, rule.bypassRoles)) return undefined;
  if ('equalsClaim' in filter)
    return { column: filter.column, anyOf: claimValues(caller.claims, filter.equalsClaim).slice(0, 1) };
  return { column: filter.column, anyOf: claimValues(caller.claims, filter.inClaim) };
}

/** Whether a row (as JSON) passes the restriction. */
export function rowVisible(restriction: RowRestriction | undefined, row: Readonly<Record<string, unknown>>): boolean {
  if (restriction === undefined) return true;
  const value = row[restriction.column];
  if (value === null || value === undefined) return false;
  return restriction.anyOf.includes(String(value));
}

/** A row outside the caller's restriction is reported as missing, so its existence is not revealed. */
export function assertRowVisible(
  restriction: RowRestriction | undefined,
  row: Readonly<Record<string, unknown>>,
  entity: string,
  id: string,
): void {
  if (!rowVisible(restriction, row)) throw new NotFoundError(`no ${entity} '${id}'`);
}

/**
 * Why a row filter on `column` cannot be applied exactly, or undefined when it can. Reads filter in SQL on the
 * column's text (`col::text`); the change log, a write's answer and the live feed compare the row's JSON value as text.
 * The two agree for text, uuid, boolean, integer and smallint columns only: a bigint's JSON value is rounded past
 * 2^53, a numeric's drops trailing zeros, a timestamp's JSON text is not its `::text`, a `char(n)`'s padding is trimmed
 * by `::text`, an array or JSON value has no one text.
 */
export function rowFilterProblem(entity: EntitySpec, column: string): string | undefined {
  const field = Object.hasOwn(entity.fields, column) ? entity.fields[column] : undefined;
  if (field === undefined) return `no column '${column}'`;
  if (field.opaque === true) {
    return `column '${column}' is of type ${field.pgType ?? field.type}, not known as text: a row filter needs text, uuid, boolean, integer or smallint (a domain over one of them counts once the tenant's schema is refreshed: tenants refresh-schema)`;
  }
  const pg = field.pgType ?? field.type;
  const exact =
    field.type === 'uuid' ||
    field.type === 'boolean' ||
    (field.type === 'text' && field.padded !== true) ||
    (field.type === 'int' && !/bigint|int8/.test(pg));
  const named = field.padded === true ? 'char(n)' : pg;
  return exact
    ? undefined
    : `column '${column}' is ${named}: a row filter needs text, uuid, boolean, integer or smallint`;
}

/**
 * The rule as it can be applied to `entity`: a row filter that cannot be applied exactly (`rowFilterProblem`) matches
 * no row, so only the bypass roles keep their access (onboarding reports such a rule; until 2026-12-03 a bigint filter
 * column let the change log and the live feed compare rounded values, and show a row to the wrong members).
 */
export function applicableRule(rule: EntityRule, entity: EntitySpec): EntityRule {
  const filter = rule.rowFilter;
  if (filter === undefined || rowFilterProblem(entity, filter.column) === undefined) return rule;
  const bypassing = (roles: readonly string[]) => roles.filter((role) => rule.bypassRoles.includes(role));
  return { readRoles: bypassing(rule.readRoles), writeRoles: bypassing(rule.writeRoles), bypassRoles: [] };
}

/**
 * Who may receive a change of a row on the live feed (the delivery engine filters members by it): the read roles,
 * and, with a row filter, members whose claim includes the row's filter value unless they hold a bypass role.
 */
export interface Audience {
  readonly roles?: string[];
  readonly bypassRoles?: string[];
  readonly claim?: { readonly name: string; readonly anyOf: string[]; readonly firstValue?: true };
  /** The rule it was judged under (`ruleFingerprint`): a replay under other rules gives a reset instead. */
  readonly rules: string;
}

/**
 * What decides who reads an entity's rows, as a short fingerprint: the read and bypass roles and the row filter (not
 * the write roles). Two rules with the same fingerprint give every caller the same rows; a message of the live feed
 * carries the one it was judged under (`Audience.rules`).
 */
export function ruleFingerprint(rule: EntityRule): string {
  const filter = rule.rowFilter;
  const read = [
    [...rule.readRoles].sort(),
    [...rule.bypassRoles].sort(),
    filter === undefined
      ? null
      : [filter.column, 'equalsClaim' in filter ? `=${filter.equalsClaim}` : `in ${filter.inClaim}`],
  ];
  return createHash('sha256').update(JSON.stringify(read)).digest('base64url').slice(0, 16);
}

export function audienceFor(rule: EntityRule, row: Readonly<Record<string, unknown>> | undefined): Audience {
  const filter = rule.rowFilter;
  const rules = ruleFingerprint(rule);
  if (filter === undefined) return { roles: [...rule.readRoles], rules };
  const value = row?.[filter.column];
  const anyOf = value === null || value === undefined ? [] : [String(value)];
  // As `rowRestriction` reads the claim: `equalsClaim` by its first value only.
  const claim =
    'equalsClaim' in filter
      ? { name: filter.equalsClaim, anyOf, firstValue: true as const }
      : { name: filter.inClaim, anyOf };
  return { roles: [...rule.readRoles], bypassRoles: [...rule.bypassRoles], claim, rules };
}
