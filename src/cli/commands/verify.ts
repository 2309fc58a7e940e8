import { statusExitCode } from '../../core/status';
import { verify } from '../../core/verify';
import { defineCommand } from '../command';
import { withReadOnlyToolkit } from '../session';
import { printStatus } from './status-format';

export { verify };

export default defineCommand({
  command: 'verify',
  describe:
    'Prove every cell decrypts with its row authenticator and that ' +
    'the saved key alone reads a sample offline (exit 3 otherwise)',
  run: async (args, io) =>
    withReadOnlyToolkit(args, io, async (tk) => {
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
      for (const u of report.undecryptable) {
        io.print(
          `${u.count} cell(s) of ${u.table}.${u.column} do not decrypt; ` +
            `restore these rows (${u.primaryKey}), e.g. from a backup:`,
        );
        for (const id of u.ids) io.print(`  ${id}`);
        if (u.omitted > 0)
          io.print(`  ... and ${u.omitted} more (only the first ${u.ids.length}, in primary-key order, are listed)`);
      }
      const code = statusExitCode(report.status, report.ok);
      io.print(verdict(report.status.running ? 'running' : code));
      return code;
    }),
});

function verdict(code: number | 'running'): string {
  if (code === 'running') return 'verify: NOT RUN (a key operation is running; verify again when it has finished)';
  if (code === 0) return 'verify: OK';
  return code === 4 ? 'verify: NOT CHECKED (no usable key)' : 'verify: FAILED';
}
