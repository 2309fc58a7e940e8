import type { Db, KeyPermission, PermissionCheck } from '../engine';

/**
 * Who may read, change or activate the key (the three permissions in README, "Changing the key"). On PostgreSQL
 * they are database roles: a superuser or the database owner has all three; anyone else needs
 * membership in the role named here (created by the DBA: `create role cellcrypt_key_reader`).
 */
export const PERMISSION_ROLES: Readonly<Record<KeyPermission, string>> = {
  'read-key': 'cellcrypt_key_reader',
  'change-key': 'cellcrypt_key_changer',
  activate: 'cellcrypt_key_activator',
};

export async function checkPostgresPermission(db: Db, permission: KeyPermission): Promise<PermissionCheck> {
  const role = PERMISSION_ROLES[permission];
  const result = await db.raw(
    `select current_user as "user",
            (select rolsuper from pg_roles where rolname = current_user) as superuser,
            (select pg_has_role(current_user, datdba, 'MEMBER') ` +
      `from pg_database where datname = current_database()) as owner,
            exists (select 1 from pg_roles r where r.rolname = ? ` +
      `and pg_has_role(current_user, r.oid, 'MEMBER')) as member`,
    [role],
  );
  const row = result.rows[0] as { user: string; superuser: boolean; owner: boolean; member: boolean };
  return {
    granted: row.superuser || row.owner || row.member,
    user: row.user,
    grantedBy: `membership in role ${role} (or being a superuser or the database owner)`,
  };
}
