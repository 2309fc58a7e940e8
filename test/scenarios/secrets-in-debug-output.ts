import { expect } from 'chai';
import { format } from 'node:util';
import { requireActive, withOpenKeys } from '../../src/core/key-access';
import { inProcessCli } from '../support/in-process-cli';
import { createTestOrg, type TestOrg, type TargetName } from '../support/targets';

// knex logs every query and its bindings through the `debug` package (DEBUG=knex:*). Secrets
// travel as bindings, so the key-hierarchy calls bypass knex; this proves nothing slips through.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const debug = require('debug') as { enable(ns: string): void; disable(): string; log: (...args: unknown[]) => void };

export function scenarios(target: TargetName): void {
  describe(`secrets never reach knex debug output (${target})`, function () {
    let org: TestOrg;
    const savedEnv = { ...process.env };
    const captured: string[] = [];
    const originalLog = debug.log;

    beforeEach(async () => {
      org = await createTestOrg(target);
      Object.assign(process.env, org.env);
      captured.length = 0;
      debug.log = (...args: unknown[]) => captured.push(format(...args));
      debug.enable('knex:*');
    });

    afterEach(async () => {
      debug.disable();
      debug.log = originalLog;
      for (const key of Object.keys(org.env)) {
        if (savedEnv[key] === undefined) delete process.env[key];
        else process.env[key] = savedEnv[key];
      }
      await org.cleanup();
    });

    it(
      'install, status, verify, change-key (--dry-run, one transaction, ' +
        'batched): no passphrase or master-key password in debug lines or output',
      async () => {
        const runs = [
          await inProcessCli('demo', 'seed', '--rows', '20'),
          await inProcessCli('install'),
          await inProcessCli('status', '--json'),
          await inProcessCli('verify'),
          await inProcessCli('change-key', '--generate', '--dry-run'),
          await inProcessCli('change-key', '--generate'),
          await inProcessCli('change-key', '--generate', '--batch-size', '7', '--json'),
        ];
        expect(runs.map((r) => r.code)).to.deep.equal([0, 0, 0, 0, 0, 0, 0]);
        expect(
          captured.some((line) => line.includes('knex:bindings')),
          'debug output was captured',
        ).to.equal(true);

        const tk = await org.open();
        const keystore = await tk.keystore();
        const secrets = [
          (await keystore.get('passphrase'))!.reveal(),
          (await keystore.get('master-key-password'))!.reveal(),
        ];
        const audit = JSON.stringify((await tk.engine.knex.raw('select * from cellcrypt.audit')).rows);
        const ledger = JSON.stringify((await tk.engine.knex.raw('select * from cellcrypt.ledger')).rows);
        await tk.close();
        const everything = [
          ...captured,
          ...runs.map((r) => [r.stdout, r.stderr, JSON.stringify(r.json ?? null)].join('\n')),
          audit,
          ledger,
        ].join('\n');
        for (const secret of secrets) expect(everything.includes(secret), 'a secret leaked').to.equal(false);
      },
    );

    it(
      'a transaction that carried a secret has parameter ' + 'logging turned off (log_statement=all would print it)',
      async () => {
        expect((await inProcessCli('demo', 'seed', '--rows', '3')).code).to.equal(0);
        expect((await inProcessCli('install')).code).to.equal(0);
        const tk = await org.open();
        try {
          const { access } = await requireActive(tk);
          const settings = await withOpenKeys(
            tk,
            access,
            async (trx) =>
              (
                await trx.raw(
                  `select current_setting('log_parameter_max_length') as normal, ` +
                    `current_setting('log_parameter_max_length_on_error') as on_error`,
                )
              ).rows[0],
          );
          expect(settings).to.deep.equal({ normal: '0', on_error: '0' });
          const outside = (await tk.engine.knex.raw(`select current_setting('log_parameter_max_length') as normal`))
            .rows[0];
          expect(outside.normal, 'only for that transaction').not.to.equal('0');
        } finally {
          await tk.close();
        }
      },
    );
  });
}
