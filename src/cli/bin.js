#!/usr/bin/env node
// The `cellcrypt` executable: the compiled CLI when dist/ is up to date, else the TypeScript
// through tsx (scripts/launch.cjs).
const { runCli, handleInterrupts } = require('../../scripts/launch.cjs').load('src/cli/main');

// When the command is done the process ends on its own once every connection is closed; a
// driver that keeps a socket to a server that never answered must not keep it alive for good.
function exitSoon(code) {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 3000).unref();
}

// Ctrl-C rolls back the step in progress and says how to go on (exit 130); a second one exits at once.
runCli(process.argv.slice(2), undefined, { interruption: handleInterrupts() }).then(exitSoon, (error) => {
  process.stderr.write(`${String(error)}\n`);
  exitSoon(1);
});
