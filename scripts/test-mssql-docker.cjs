#!/usr/bin/env node
// `npm run test:mssql:docker -- --version 2022`: starts that SQL Server from compose.yaml, waits
// until its health check passes, runs the real-server suite (`npm run test:mssql`) against it
// with TEST_MSSQL_URL, and removes the container again, also when the suite fails or is
// interrupted. The sa password is MSSQL_SA_PASSWORD, or a random one; it travels in the
// environment of docker compose and of the suite, never on a command line.
const { spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const COMPOSE_FILE = join(ROOT, 'compose.yaml');

/** The compose service and host port of each version (compose.yaml; test/unit/ci-files.test.ts holds them equal). */
const VERSIONS = {
  2017: { service: 'mssql-2017', port: 14331 },
  2019: { service: 'mssql-2019', port: 14332 },
  2022: { service: 'mssql-2022', port: 14333 },
};

const USAGE = `usage: npm run test:mssql:docker -- --version ${Object.keys(VERSIONS).join('|')}`;

class Refusal extends Error {
  constructor(message, exitCode) {
    super(message);
    this.exitCode = exitCode;
  }
}

function parseArgs(argv) {
  let version = '2022';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--version') version = argv[++i];
    else if (arg.startsWith('--version=')) version = arg.slice('--version='.length);
    else throw new Refusal(`unknown argument ${arg}\n${USAGE}`, 2);
  }
  if (!Object.hasOwn(VERSIONS, version ?? '')) throw new Refusal(`no SQL Server ${version} here\n${USAGE}`, 2);
  return { version, ...VERSIONS[version] };
}

/** Docker with compose v2 and a daemon that answers; otherwise a refusal that says which is missing. */
function requireDocker(run) {
  const compose = run('docker', ['compose', 'version']);
  if (compose.error && compose.error.code === 'ENOENT')
    throw new Refusal(
      'test:mssql:docker needs Docker: `docker` is not on the PATH (install Docker Engine or Desktop)',
      1,
    );
  if (compose.status !== 0)
    throw new Refusal('test:mssql:docker needs Docker Compose v2: `docker compose version` failed', 1);
  const info = run('docker', ['info', '--format', '{{.ServerVersion}}']);
  if (info.status !== 0)
    throw new Refusal('test:mssql:docker needs a running Docker daemon: `docker info` cannot reach it', 1);
}

/** A password SQL Server's policy accepts (upper, lower, digit, symbol) that needs no escaping in a URL. */
const randomPassword = () => `Cellcrypt-${randomBytes(12).toString('hex')}-Aa1`;

function main(argv, run = (command, args, options) => spawnSync(command, args, { encoding: 'utf8', ...options })) {
  const { version, service, port } = parseArgs(argv);
  requireDocker(run);
  const password = process.env.MSSQL_SA_PASSWORD || randomPassword();
  const env = { ...process.env, MSSQL_SA_PASSWORD: password };
  const project = ['-f', COMPOSE_FILE, '-p', `cellcrypt-mssql-${version}`];
  const down = () => run('docker', ['compose', ...project, 'down', '--volumes'], { env, stdio: 'inherit' });
  const stop = () => {
    down();
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    process.stderr.write(`test:mssql:docker: starting SQL Server ${version} (${service}, 127.0.0.1:${port})\n`);
    const up = run('docker', ['compose', ...project, 'up', '-d', '--wait', service], { env, stdio: 'inherit' });
    if (up.status !== 0) throw new Refusal(`SQL Server ${version} did not start or never became healthy`, 1);
    const url = `mssql://sa:${encodeURIComponent(password)}@127.0.0.1:${port}/master?trustServerCertificate=true`;
    const suite = run('npm', ['run', 'test:mssql'], {
      cwd: ROOT,
      env: { ...env, TEST_MSSQL_URL: url },
      stdio: 'inherit',
    });
    return suite.status ?? 1;
  } finally {
    down();
  }
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = error.exitCode ?? 1;
  }
}

module.exports = { VERSIONS, parseArgs, requireDocker, main };
