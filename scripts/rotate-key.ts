// The documented DBA entry point for a key rotation:
//   npm run rotate-key -- --key-file new.txt      (or --generate, --batch-size N, --dry-run)
// It runs exactly the code of `cellcrypt change-key`, with the same options and exit codes.
import { runCli } from '../src/cli/main';

runCli(['change-key', ...process.argv.slice(2)]).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  },
);
