import { CellcryptError } from '../common/errors';
import type { Toolkit } from './toolkit';

/**
 * A server that logs statements with their parameters, for a user who may not turn that off
 * for its session, writes every master-key password and new passphrase of a key operation into
 * its log (74 times in one trial), and a warning line did not stop it. Refused before the first
 * change, with the fix, unless CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG=1 says the risk is known.
 */
export async function requireSecretsStayOutOfServerLog(tk: Toolkit): Promise<void> {
  if (tk.settings.acceptSecretsInServerLog || !tk.engine.capabilities.mayLogParameters) return;
  const risk = (await tk.engine.diagnose()).find((check) => check.check === 'server log' && check.outcome === 'warn');
  if (!risk) return;
  throw new CellcryptError(
    'CellcryptSecretsWouldBeLogged',
    `${risk.detail}: this operation's key secrets would reach the server log; nothing was changed`,
    {
      exitCode: 2,
      hint: `${risk.hint}; or set CELLCRYPT_ACCEPT_SECRETS_IN_SERVER_LOG=1 to accept it (then rotate the secrets)`,
    },
  );
}
