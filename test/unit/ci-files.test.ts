import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * The files that run the SQL Server suite where a SQL Server can run (issue 17): compose.yaml,
 * the GitHub workflow and `npm run test:mssql:docker`. None of them can run here (no Docker, no
 * SQL Server), so they are read as what they are, YAML, and checked to name the suite and the
 * three versions, so they cannot rot unseen; the script is run far enough to refuse clearly.
 */
const ROOT = join(__dirname, '../..');
const VERSIONS = ['2017', '2019', '2022'];
const read = (file: string) => parse(readFileSync(join(ROOT, file), 'utf8'), { merge: true });
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dockerScript = require(join(ROOT, 'scripts/test-mssql-docker.cjs')) as {
  VERSIONS: Record<string, { service: string; port: number }>;
};

/** The sqlcmd a version's image has (microsoft/mssql-docker#892: tools18 from 2019 CU28, 2022 CU14). */
const SQLCMD18 = '/opt/mssql-tools18/bin/sqlcmd -C';
const SQLCMD = '/opt/mssql-tools/bin/sqlcmd';

describe('compose.yaml: SQL Server 2017, 2019 and 2022', () => {
  const compose = read('compose.yaml');

  for (const version of VERSIONS) {
    it(`mssql-${version}: official image, EULA, sa password from the environment, sqlcmd health check`, () => {
      const service = compose.services[`mssql-${version}`];
      expect(service, `no service mssql-${version}`).to.be.an('object');
      expect(service.image).to.equal(`mcr.microsoft.com/mssql/server:${version}-latest`);
      expect(service.environment.ACCEPT_EULA).to.equal('Y');
      expect(service.environment.MSSQL_SA_PASSWORD).to.match(/^\$\{MSSQL_SA_PASSWORD[:?}]/);
      const [kind, command] = service.healthcheck.test as string[];
      expect(kind).to.equal('CMD-SHELL');
      expect(command).to.contain(version === '2017' ? SQLCMD : SQLCMD18);
      // The password is sqlcmd's environment, not its command line ($$ is compose's escape of $).
      expect(command).to.contain('SQLCMDPASSWORD="$$MSSQL_SA_PASSWORD"').and.not.to.contain(' -P ');
      expect(service.ports).to.deep.equal([`127.0.0.1:${dockerScript.VERSIONS[version].port}:1433`]);
    });
  }

  it('distinct host ports, and exactly the services the docker script starts', () => {
    const ports = VERSIONS.map((v) => dockerScript.VERSIONS[v].port);
    expect(new Set(ports).size).to.equal(3);
    expect(Object.keys(compose.services).sort()).to.deep.equal(
      Object.values(dockerScript.VERSIONS)
        .map((v) => v.service)
        .sort(),
    );
  });
});

describe('.github/workflows/ci.yml', () => {
  const workflow = read('.github/workflows/ci.yml');
  const jobs = Object.values(workflow.jobs) as Array<Record<string, any>>;
  const runs = (job: Record<string, any>) => (job.steps as Array<{ run?: string }>).map((s) => s.run ?? '');

  it('one job runs .ci/run', () => {
    expect(jobs.some((job) => runs(job).some((run) => /(^|\s)(bash )?\.ci\/run$/.test(run)))).to.equal(true);
  });

  it('a matrix over SQL Server 2017, 2019 and 2022 as service containers runs npm ci and npm run test:mssql', () => {
    const job = jobs.find((j) => j.services && j.strategy?.matrix)!;
    expect(job, 'no job with a matrix and services').to.not.equal(undefined);
    const matrix = job.strategy.matrix.include as Array<{ version: string; sqlcmd: string }>;
    expect(matrix.map((m) => m.version)).to.deep.equal(VERSIONS);
    for (const entry of matrix) expect(entry.sqlcmd).to.equal(entry.version === '2017' ? SQLCMD : SQLCMD18);
    const service = Object.values(job.services)[0] as Record<string, any>;
    expect(service.image).to.equal('mcr.microsoft.com/mssql/server:${{ matrix.version }}-latest');
    expect(service.env.ACCEPT_EULA).to.equal('Y');
    expect(service.options).to.contain('--health-cmd').and.to.contain('${{ matrix.sqlcmd }}');
    expect(service.options).to.contain('SQLCMDPASSWORD=$MSSQL_SA_PASSWORD').and.not.to.contain(' -P ');
    expect(runs(job)).to.include.members(['npm ci --no-audit --no-fund', 'npm run test:mssql']);
    expect(job.env.TEST_MSSQL_URL).to.match(/^mssql:\/\/sa:.+@localhost:1433\/master\?trustServerCertificate=true$/);
  });
});

describe('npm run test:mssql and test:mssql:docker', () => {
  const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;

  it('test:mssql runs the real-server suite; test:mssql:docker the docker script', () => {
    expect(scripts['test:mssql']).to.contain('test/mssql-server/');
    expect(scripts['test:mssql:docker']).to.equal('node scripts/test-mssql-docker.cjs');
  });

  const script = join(ROOT, 'scripts/test-mssql-docker.cjs');
  const runScript = (args: string[], path: string) =>
    spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, PATH: path } });

  it('without docker on the PATH: exit 1, saying Docker is needed, before anything starts', () => {
    const empty = mkdtempSync(join(tmpdir(), 'cellcrypt-no-docker-'));
    const run = runScript(['--version', '2022'], empty);
    rmSync(empty, { recursive: true });
    expect(run.status).to.equal(1);
    expect(run.stderr).to.contain('needs Docker').and.to.contain('not on the PATH');
  });

  it('a docker without compose v2, or without a daemon: exit 1, naming which', () => {
    const bin = mkdtempSync(join(tmpdir(), 'cellcrypt-fake-docker-'));
    try {
      const docker = join(bin, 'docker');
      for (const [fails, says] of [
        ['compose', 'Docker Compose v2'],
        ['info', 'running Docker daemon'],
      ]) {
        writeFileSync(docker, `#!/bin/sh\n[ "$1" = "${fails}" ] && exit 1\nexit 0\n`);
        chmodSync(docker, 0o755);
        const run = runScript(['--version', '2019'], bin);
        expect(run.status, run.stderr).to.equal(1);
        expect(run.stderr).to.contain(says);
      }
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('a version compose.yaml has no service for: exit 2 with the usage', () => {
    const run = runScript(['--version', '2016'], process.env.PATH ?? '');
    expect(run.status).to.equal(2);
    expect(run.stderr).to.contain('usage: npm run test:mssql:docker -- --version 2017|2019|2022');
  });
});
