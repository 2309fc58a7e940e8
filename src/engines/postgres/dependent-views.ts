import type { Db } from '../engine';
import { knexLiteralText as text, quotePgIdentifier as q, quotePgLiteral } from './quote';

/**
 * Views over a column that is being swapped. PostgreSQL refuses to drop a column a view uses
 * (2BP01), and a Dynamics org has an entity view over every Base table (`Mailbox` over
 * `MailboxBase`) and Filtered views over those. So the swap keeps each dependent view's
 * definition, options, owner, grants and comment, drops the views (the deepest first), swaps,
 * and re-creates them (the shallowest first) in the same transaction: the views then return
 * the encrypted column under its old name, and a failure anywhere rolls all of it back. What
 * cannot be re-created unchanged is named by `viewBlockers`, which planning refuses.
 */
export interface SavedView {
  readonly schema: string;
  readonly name: string;
  readonly kind: 'view' | 'materialized';
  readonly definition: string;
  readonly options: readonly string[];
  readonly owner: string;
  readonly grants: ReadonlyArray<{ grantee: string; privilege: string; grantable: boolean }>;
  readonly comment: string | null;
  /** 1: uses the column directly; 2: uses a view of depth 1; ... */
  readonly depth: number;
}

/** Every view that depends on `table.column`, directly or through other views. */
export async function findDependentViews(db: Db, table: string, column: string): Promise<SavedView[]> {
  const result = await db.raw(
    `with recursive direct as (
       select distinct r.ev_class as oid
         from pg_depend d
         join pg_rewrite r on r.oid = d.objid
         join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
        where d.classid = 'pg_rewrite'::regclass and d.refobjid = to_regclass(?) and a.attname = ?
          and r.ev_class <> d.refobjid
     ), views(oid, depth) as (
       select oid, 1 from direct
       union all
       select r.ev_class, views.depth + 1
         from views
         join pg_depend d on d.refobjid = views.oid and d.classid = 'pg_rewrite'::regclass
         join pg_rewrite r on r.oid = d.objid
        where r.ev_class <> views.oid and views.depth < 50
     )
     select n.nspname as schema, c.relname as name, c.relkind as kind,
            pg_get_viewdef(c.oid) as definition, coalesce(c.reloptions, '{}') as options,
            pg_get_userbyid(c.relowner) as owner, obj_description(c.oid, 'pg_class') as comment,
            (select coalesce(json_agg(json_build_object(
                      'grantee', case when g.grantee = 0 then 'PUBLIC' else pg_get_userbyid(g.grantee) end,
                      'privilege', g.privilege_type, 'grantable', g.is_grantable)), '[]')
               from aclexplode(c.relacl) as g) as grants,
            max(v.depth) as depth
       from views v join pg_class c on c.oid = v.oid join pg_namespace n on n.oid = c.relnamespace
      group by c.oid, n.nspname, c.relname, c.relkind
      order by depth, n.nspname, c.relname`,
    [q(table), column],
  );
  return (result.rows as Array<Record<string, any>>).map((row) => ({
    schema: row.schema,
    name: row.name,
    kind: row.kind === 'm' ? 'materialized' : 'view',
    definition: row.definition,
    options: row.options,
    owner: row.owner,
    grants: typeof row.grants === 'string' ? JSON.parse(row.grants) : row.grants,
    comment: row.comment,
    depth: Number(row.depth),
  }));
}

/**
 * What would stop the swap, named for the refusal before any change: a materialized view
 * (re-creating it would recompute it), or a definition that cannot be sent back unchanged.
 */
export function viewBlockers(views: readonly SavedView[]): string[] {
  const blockers: string[] = [];
  for (const view of views) {
    if (view.kind === 'materialized') blockers.push(`materialized view ${label(view)}`);
    else if (/\\\?/.test(view.definition)) blockers.push(`view ${label(view)} (a backslash before "?" in its text)`);
  }
  return blockers;
}

// Every table privilege PostgreSQL 13-17 knows (MAINTAIN since 17, which PGlite is).
const PRIVILEGES = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', 'MAINTAIN']);

const label = (view: SavedView) => `${q(view.schema)}.${q(view.name)}`;

/** The statements that drop the views (the deepest first) and re-create them as they were (the shallowest first). */
export function viewStatements(views: readonly SavedView[]): { drop: string[]; create: string[] } {
  const drop = [...views].sort((a, b) => b.depth - a.depth).map((view) => text(`drop view ${label(view)}`));
  const create: string[] = [];
  for (const view of [...views].sort((a, b) => a.depth - b.depth)) {
    const name = label(view);
    const options = view.options.length ? ` with (${view.options.join(', ')})` : '';
    create.push(text(`create view ${name}${options} as ${view.definition.replace(/;\s*$/, '')}`));
    create.push(text(`alter view ${name} owner to ${q(view.owner)}`));
    if (view.grants.length) {
      // Exactly the saved privileges: the new view starts with its owner's defaults.
      create.push(text(`revoke all on ${name} from public, ${q(view.owner)}`));
      for (const grant of view.grants) {
        if (!PRIVILEGES.has(grant.privilege)) throw new Error(`unexpected privilege ${grant.privilege} on ${name}`);
        const grantee = grant.grantee === 'PUBLIC' ? 'public' : q(grant.grantee);
        create.push(
          text(`grant ${grant.privilege} on ${name} to ${grantee}${grant.grantable ? ' with grant option' : ''}`),
        );
      }
    }
    if (view.comment !== null) create.push(text(`comment on view ${name} is ${quotePgLiteral(view.comment)}`));
  }
  return { drop, create };
}
