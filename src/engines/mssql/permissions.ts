import type { Db, KeyPermission, PermissionCheck } from '../engine';
import { CERTIFICATE_NAME } from '../../common/key-names';
import { query } from './execute';
import { ourCertificates } from './key-statements';
import { tsqlLiteral } from './quote';

/**
 * The three key permissions on SQL Server. CONTROL on the database (db_owner has it) grants
 * all three. Otherwise a member of the database role named here also needs what the server
 * itself checks: VIEW DEFINITION and CONTROL on the certificate to open keys, ALTER ANY
 * SYMMETRIC KEY to create and drop them; activate rebuilds the master key, which takes CONTROL.
 */
export const PERMISSION_ROLES: Readonly<Record<KeyPermission, string>> = {
  'read-key': 'cellcrypt_key_reader',
  'change-key': 'cellcrypt_key_changer',
  activate: 'cellcrypt_key_activator',
};

export const permissionQuery = (permission: KeyPermission): string => {
  const control = `HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CONTROL')`;
  const member = `IS_MEMBER(${tsqlLiteral(PERMISSION_ROLES[permission])})`;
  // CONTROL on our certificate, whichever generation it is (rewrap replaces it): no visible
  // certificate of ours gives NULL, which is not 1.
  const openKeys =
    `(SELECT MIN(ISNULL(HAS_PERMS_BY_NAME(name, 'CERTIFICATE', 'CONTROL'), 0)) ` +
    `FROM sys.certificates WHERE ${ourCertificates()})`;
  const alterKeys = `HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'ALTER ANY SYMMETRIC KEY')`;
  const needs =
    permission === 'activate'
      ? '0 = 1'
      : permission === 'change-key'
        ? `${member} = 1 AND ${openKeys} = 1 AND ${alterKeys} = 1`
        : `${member} = 1 AND ${openKeys} = 1`;
  return `SELECT USER_NAME() AS user_name, CASE WHEN ${control} = 1 OR (${needs}) THEN 1 ELSE 0 END AS granted`;
};

export async function checkMssqlPermission(db: Db, permission: KeyPermission): Promise<PermissionCheck> {
  const [row] = await query(db, permissionQuery(permission), 'check permissions');
  const role = PERMISSION_ROLES[permission];
  return {
    granted: Number(row?.granted) === 1,
    user: String(row?.user_name ?? '?'),
    grantedBy:
      permission === 'activate'
        ? 'CONTROL on the database (db_owner)'
        : `CONTROL on the database (db_owner), or membership in role ${role} with CONTROL on certificate ` +
          `${CERTIFICATE_NAME} (${CERTIFICATE_NAME}_N after a rewrap)` +
          `${permission === 'change-key' ? ' and ALTER ANY SYMMETRIC KEY' : ''}`,
  };
}
