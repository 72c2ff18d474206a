/**
 * What a write must hold on the row as stored, judged in its own statement (sql.ts, `WriteChecks`): the row within the
 * writer's row filter, and each foreign key it sets naming a row the writer may read (docs/entities.md, "Access
 * rules"). Until 2026-12-05 a write was judged on the values sent only, and a foreign key not at all (found by
 * attacking passes: a `varchar(5)` stored another user's filter value from `"alice "`; a reference told a hidden row
 * from a missing one, and pinned it against its owner's delete).
 */
import { MISSING_REFERENCE, type Row } from '../data-api.ts';
import { BadRequestError, ForbiddenError } from '../errors.ts';
import { applicableRule, canRead, type RowRestriction, rowRestriction, ruleOf } from './access.ts';
import type { EntityCaller, EntitySpec } from './model.ts';
import type { TenantData } from './service.ts';
import type { WriteChecks, WrittenReference } from './sql.ts';

/**
 * The checks of a write of `values` to `entity` by `caller`, whose row filter is `restriction`; `before`: the row an
 * update changes. A foreign key is checked when the write sets it to a value (null, or, in an update, the value it had,
 * is not checked), its target is an entity (a reference to a table the API does not expose is left to the database's
 * own check), and it is not the writer's row filter column (whose value is the writer's own claim: `within` holds it).
 * A target no read rule opens to the writer refuses the write at once, whether the row exists or not.
 */
export function writeChecks(
  tenant: Pick<TenantData, 'schema' | 'rules'>,
  caller: EntityCaller,
  entity: EntitySpec,
  restriction: RowRestriction | undefined,
  values: Readonly<Record<string, unknown>>,
  before?: Readonly<Record<string, unknown>>,
): WriteChecks {
  const references: WrittenReference[] = [];
  for (const [column, value] of Object.entries(values)) {
    const reference = entity.fields[column]?.references;
    if (reference === undefined || value === null || value === undefined || column === restriction?.column) continue;
    if (before !== undefined && String(before[column]) === String(value)) continue;
    const target = Object.hasOwn(tenant.schema.entities, reference.entity)
      ? tenant.schema.entities[reference.entity]
      : undefined;
    if (target === undefined) continue;
    const own = ruleOf(tenant.rules, reference.entity);
    const rule = own === undefined ? undefined : applicableRule(own, target);
    if (rule === undefined || !canRead(rule, caller)) throw new BadRequestError(MISSING_REFERENCE);
    references.push({
      column,
      table: reference.entity,
      field: reference.field,
      restriction: rowRestriction(rule, caller),
    });
  }
  const within = restriction !== undefined && (before === undefined || Object.hasOwn(values, restriction.column));
  return { ...(within && { within: restriction }), ...(references.length > 0 && { references }) };
}

/** Throws what a failed check answers (the transaction then rolls back): FORBIDDEN as the values-sent check does, or the database's own 400 for a missing row. */
export function assertChecksHeld(returned: Row | undefined, checks: WriteChecks, entityName: string): void {
  if (checks.within !== undefined && returned?.within !== true) {
    throw new ForbiddenError(
      `field '${checks.within.column}' of entity '${entityName}' must be one of your own values`,
    );
  }
  if (checks.references !== undefined && returned?.references !== true) throw new BadRequestError(MISSING_REFERENCE);
}
