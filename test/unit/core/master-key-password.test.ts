import { expect } from 'chai';
import { readMasterKeyPassword } from '../../../src/core/show-key';
import type { Toolkit } from '../../../src/core/toolkit';

/** show-key --master-key-password on SQL Server: refused before anything is read (exit 2, the way on). */
describe('show-key --master-key-password on SQL Server', () => {
  it('is refused: the service master key opens the master key, applications need no password', async () => {
    let touched = false;
    const tk = {
      engine: { kind: 'mssql' },
      keystore: async () => {
        touched = true;
        throw new Error('the key store was opened');
      },
    } as unknown as Toolkit;
    const error = await readMasterKeyPassword(tk).then(
      () => undefined,
      (e: { code: string; exitCode: number; message: string; hint?: string }) => e,
    );
    expect(error).to.include({ code: 'CellcryptUsage', exitCode: 2 });
    expect(error?.message).to.contain('need no master-key password');
    expect(error?.hint).to.contain('For applications');
    expect(touched).to.equal(false);
  });
});
