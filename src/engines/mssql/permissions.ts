import type { Db, KeyPermission, PermissionCheck } from '../engine';
import { query } from './execute';

/**
 * On SQL Server every key operation needs CONTROL on the database (db_owner has it), the
 * read-only ones included (review BR1): every command opens the master key with its password,
 * and OPEN MASTER KEY "Requires CONTROL permission on the database"; change-key ends with DROP
 * SYMMETRIC KEY, which needs CONTROL on the key, implied by CONTROL on the database and not by
 * ALTER ANY SYMMETRIC KEY. A narrower role would pass this check and then fail mid-operation,
 * so there is none (PostgreSQL keeps its three roles). Applications are another matter: the
 * role `cellcrypt_application` (application.ts) lets them open and use the keys, nothing more.
 */
export const permissionQuery = (_permission: KeyPermission): string =>
  `SELECT USER_NAME() AS user_name, ` +
  `CASE WHEN HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CONTROL') = 1 THEN 1 ELSE 0 END AS granted`;

export const GRANTED_BY =
  'CONTROL on the database (db_owner): SQL Server requires it to open the master key (OPEN MASTER KEY), ' +
  'which every cellcrypt command does';

export async function checkMssqlPermission(db: Db, permission: KeyPermission): Promise<PermissionCheck> {
  const [row] = await query(db, permissionQuery(permission), 'check permissions');
  return { granted: Number(row?.granted) === 1, user: String(row?.user_name ?? '?'), grantedBy: GRANTED_BY };
}
