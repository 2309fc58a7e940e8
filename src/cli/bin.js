#!/usr/bin/env node
// The `cellcrypt` executable: runs the TypeScript CLI through tsx's require hook.
require('tsx/cjs');
const { runCli } = require('./main.ts');
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${String(error)}\n`);
    process.exitCode = 1;
  },
);
