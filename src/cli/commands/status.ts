import { readStatus, statusExitCode } from '../../core/status';
import { defineCommand } from '../command';
import { withReadOnlyToolkit } from '../session';
import { printStatus } from './status-format';

export { readStatus };

export default defineCommand({
  command: 'status',
  describe:
    'Show whether encryption is active, the keys, and per column its cells ' +
    'by key, plaintext and undecryptable counts (exit 3 if any need attention, 4 if not checked; ' +
    'while a key operation runs, which one, exit 0)',
  run: async (args, io) =>
    withReadOnlyToolkit(args, io, async (tk) => {
      const report = await readStatus(tk);
      io.result(report);
      printStatus(io, report, tk.settings.keyMaxAgeDays);
      return statusExitCode(report);
    }),
});
