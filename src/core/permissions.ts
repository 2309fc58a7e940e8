import type { KeyPermission } from '../engines/engine';
import { CellcryptError } from '../common/errors';
import type { Toolkit } from './toolkit';

const WHAT: Readonly<Record<KeyPermission, string>> = {
  'read-key': 'read the encryption key',
  'change-key': 'change the encryption key',
  activate: 'activate an encryption key',
};

/** Refuses (exit 2, before anything is read or changed) when the database user lacks the permission. */
export async function requirePermission(tk: Toolkit, permission: KeyPermission): Promise<void> {
  const check = await tk.engine.checkPermission(permission);
  if (check.granted) return;
  throw new CellcryptError(
    'CellcryptPermissionDenied',
    `database user "${check.user}" may not ${WHAT[permission]} of ${tk.settings.database.display}`,
    {
      exitCode: 2,
      hint: `it needs ${check.grantedBy}; ask the DBA to grant it, or connect as a user who has it`,
    },
  );
}
