/**
 * What a write must hold on the row as stored, judged in its own statement (sql.ts, `WriteChecks`): the row within the
 * writer's row filter, and each of the row's foreign keys naming a row the writer may read (docs/entities.md, "Access
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
 * The checks of a write to `entity` by `caller`, whose row filter is `restriction` (`update`: a write to an existing
 * row). Every reference of the row is judged, whatever the body names (a generated column, a default or a trigger
 * fills one too: found by a third attacking pass), unless it is null, or an update leaves it as it was (compared in
 * SQL, as stored: until that pass a JavaScript comparison took `"null"` for an unchanged null, and an upper-case uuid
 * for a changed one). Not judged: a reference to a table that is no entity (left to the database's own check), and
 * the writer's own row filter column (its value is the writer's claim: `within` holds it). A target no rule lets the
 * writer read holds no row it may name.
 */
export function writeChecks(
  tenant: Pick<TenantData, 'schema' | 'rules'>,
  caller: EntityCaller,
  entity: EntitySpec,
  restriction: RowRestriction | undefined,
  update = false,
): WriteChecks {
  const references: WrittenReference[] = [];
  for (const [column, field] of Object.entries(entity.fields)) {
    const reference = field.references;
    if (reference === undefined || column === restriction?.column) continue;
    const target = Object.hasOwn(tenant.schema.entities, reference.entity)
      ? tenant.schema.entities[reference.entity]
      : undefined;
    if (target === undefined) continue;
    const own = ruleOf(tenant.rules, reference.entity);
    const rule = own === undefined ? undefined : applicableRule(own, target);
    const readable = rule !== undefined && canRead(rule, caller);
    references.push({
      column,
      table: reference.entity,
      field: reference.field,
      restriction: rule === undefined ? undefined : rowRestriction(rule, caller),
      readable,
    });
  }
  return {
    ...(restriction !== undefined && { within: restriction }),
    ...(references.length > 0 && { references }),
    ...(update && { update: true }),
  };
}

/**
 * Throws what a failed check answers (the transaction then rolls back): FORBIDDEN as the check of the values sent
 * does, or the database's own 400 for a missing row.
 */
export function assertChecksHeld(returned: Row | undefined, checks: WriteChecks, entityName: string): void {
  if (checks.within !== undefined && returned?.within !== true) {
    throw new ForbiddenError(
      `field '${checks.within.column}' of entity '${entityName}' must be one of your own values`,
    );
  }
  if (checks.references !== undefined && returned?.references !== true) throw new BadRequestError(MISSING_REFERENCE);
}
