#!/usr/bin/env node
// The `cellcrypt` executable: the compiled CLI when dist/ is up to date, else the TypeScript
// through tsx (scripts/launch.cjs).
const { runCli } = require('../../scripts/launch.cjs').load('src/cli/main');
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  },
);
