import { verify } from '../../core/verify';
import { defineCommand } from '../command';
import { withToolkit } from '../session';
import { printStatus } from './status-format';

export { verify };

export default defineCommand({
  command: 'verify',
  describe:
    'Prove every cell decrypts with its row authenticator and that ' +
    'the saved key alone reads a sample offline (exit 3 otherwise)',
  run: async (args, io) =>
    withToolkit(args, io, async (tk) => {
      const report = await verify(tk);
      io.result(report);
      printStatus(io, report.status);
      for (const o of report.offline) {
        io.print(
          `offline check ${o.table}.${o.column}: ${o.sampled - o.failed}/${o.sampled} ` +
            `sampled cells decrypt with the saved key alone`,
        );
        for (const failure of o.failures) io.print(`  ${failure}`);
      }
      io.print(report.ok ? 'verify: OK' : 'verify: FAILED');
      return report.ok ? 0 : 3;
    }),
});
