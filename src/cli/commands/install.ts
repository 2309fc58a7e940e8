import { install } from '../../core/install';
import { readStatus } from '../../core/status';
import { defineCommand } from '../command';
import { withToolkit } from '../session';
import { printStatus } from './status-format';

export { install };

export default defineCommand({
  command: 'install',
  describe: 'Create the key hierarchy and encrypt the registered columns (org install / upgrade); safe to re-run',
  run: async (args, io) =>
    withToolkit(args, io, async (tk) => {
      const result = await install(tk);
      const status = await readStatus(tk);
      io.result({ ...result, status });
      io.print(
        result.migrations.length || result.conversions.length
          ? `installed in ${result.durationMs} ms`
          : 'already installed: nothing to do',
      );
      printStatus(io, status);
      return 0;
    }),
});
