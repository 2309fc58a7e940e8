/**
 * How the DBA reading a message runs cellcrypt here. Messages and hints say `cellcrypt show-key`;
 * a checkout run through npm (`npm start`, `npm run cli -- …`) has no `cellcrypt` on the PATH,
 * so the text output says `npm run cli -- show-key` there instead: the form that works where
 * it runs. JSON documents keep the one stable form.
 */
const COMMANDS = [
  'install',
  'migrate',
  'status',
  'verify',
  'doctor',
  'show-key',
  'change-key',
  'activate',
  'decrypt-offline',
  'script',
  'demo',
  'rewrap',
  'keys',
  'selftest',
  '--help',
];
const MENTION = new RegExp(`\\bcellcrypt (?=(?:${COMMANDS.join('|')})(?![\\w-]))`, 'g');
const NPM_SCRIPTS = new Set(['start', 'cli', 'rotate-key']);

/** The prefix that runs a command here: `npm run cli --` under this checkout's npm scripts. */
export function commandPrefix(env: NodeJS.ProcessEnv = process.env): string {
  return NPM_SCRIPTS.has(env.npm_lifecycle_event ?? '') && env.npm_package_name === 'cellcrypt'
    ? 'npm run cli --'
    : 'cellcrypt';
}

/** `text` with every `cellcrypt <command>` written as it runs here. */
export function asRunHere(text: string, env: NodeJS.ProcessEnv = process.env): string {
  const prefix = commandPrefix(env);
  return prefix === 'cellcrypt' ? text : text.replace(MENTION, `${prefix} `);
}
