import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { ConnectionTarget } from '../../config/connection-target';
import { redact, Secret } from '../../common/secret';
import type { ScriptSecrets } from '../engine';
import { sqlcmdVariablesFile } from './script-variables';

/**
 * Runs a script `cellcrypt script` printed with sqlcmd on the target's database, as the README
 * tells a DBA to: the secrets in the variables file `cellcrypt script variables` writes (UTF-16
 * with a BOM, 0600), read first (`-i vars.sql,script.sql`); the script as UTF-8 with -f 65001
 * (review DL3); QUOTED_IDENTIFIER on (-I, review BR4); -b so a failed batch sets the exit code.
 * No secret is on sqlcmd's command line (a process list shows it): the login password is
 * SQLCMDPASSWORD in its environment. Both files are removed afterwards.
 */
const FALLBACK_PATHS = ['/opt/mssql-tools18/bin/sqlcmd', '/opt/mssql-tools/bin/sqlcmd'];

/** sqlcmd on the PATH (or where Microsoft's packages put it), undefined when there is none. */
export function findSqlcmd(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const names = process.platform === 'win32' ? ['sqlcmd.exe'] : ['sqlcmd'];
  const onPath = (env.PATH ?? '').split(delimiter).flatMap((dir) => (dir ? names.map((n) => join(dir, n)) : []));
  return [...onPath, ...FALLBACK_PATHS].find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The command line: where to connect and how to read the script; no secret is ever in it. */
export function sqlcmdArguments(target: ConnectionTarget, variablesFile: string, scriptFile: string): string[] {
  const url = new URL(target.url);
  const params = url.searchParams;
  const instance = params.get('instanceName');
  const server = instance ? `${url.hostname}\\${instance}` : `${url.hostname},${url.port || 1433}`;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return [
    '-S',
    server,
    '-U',
    decodeURIComponent(url.username),
    ...(database ? ['-d', database] : []),
    ...(params.get('trustServerCertificate') === 'true' ? ['-C'] : []),
    '-I',
    '-b',
    '-f',
    '65001',
    '-i',
    `${variablesFile},${scriptFile}`,
  ];
}

/** sqlcmd's environment: the login password (SQLCMDPASSWORD), never an argument. */
export function sqlcmdEnvironment(target: ConnectionTarget): NodeJS.ProcessEnv {
  return { ...process.env, SQLCMDPASSWORD: decodeURIComponent(new URL(target.url).password) };
}

export async function runSqlcmd(
  target: ConnectionTarget,
  script: string,
  secrets: ScriptSecrets,
  sqlcmd: string | undefined = findSqlcmd(),
): Promise<{ exitCode: number; output: string } | undefined> {
  if (!sqlcmd) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cellcrypt-sqlcmd-'));
  try {
    const variables = join(dir, 'vars.sql');
    const file = join(dir, 'script.sql');
    writeFileSync(variables, sqlcmdVariablesFile(secrets), { mode: 0o600 });
    writeFileSync(file, script, { encoding: 'utf8', mode: 0o600 });
    const child = spawn(sqlcmd, sqlcmdArguments(target, variables, file), {
      env: sqlcmdEnvironment(target),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code ?? 1));
    });
    // sqlcmd echoes a failing statement: with a secret inlined by variable substitution, that is the secret.
    const password = new Secret(decodeURIComponent(new URL(target.url).password));
    // As the script holds them, too: inside N'...' a ' is doubled.
    const held = Object.values(secrets).flatMap((s) => [s, new Secret(s.reveal().replace(/'/g, "''"))]);
    return { exitCode, output: redact(output, [...held, password]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
