import { doctor } from '../../core/doctor';
import { defineCommand } from '../command';
import { withReadOnlyToolkit } from '../session';

export { doctor };

const MARK = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

export default defineCommand({
  command: 'doctor',
  describe:
    'Check everything a DBA would before trusting this org (server, schema, migrations, key, key ' +
    'store, columns, quota, permissions); each problem names its fix (exit 3 if any check fails)',
  run: async (args, io) =>
    withReadOnlyToolkit(args, io, async (tk) => {
      const report = await doctor(tk);
      io.result(report);
      for (const check of report.checks) {
        io.print(
          `${MARK[check.outcome]}  ${check.check}: ${check.detail}${check.hint ? `\n        -> ${check.hint}` : ''}`,
        );
      }
      io.print(report.healthy ? 'doctor: no failing checks' : 'doctor: problems found');
      return report.healthy ? 0 : 3;
    }),
});
