import { expect } from 'chai';
import { inspect } from 'node:util';
import type { Knex } from 'knex';
import { loadSettings, type Settings } from '../../../src/config/settings';
import { engineAround, knexConfigFor, openKnex, type Engine } from '../../../src/engines';

/**
 * Issue 15: nothing a program may log or serialize (the settings, the engine, the knex config,
 * knex's copies of it) shows a database password, on any engine. The passwords carry the
 * characters a URL must percent-encode, and each has a plain core (`Q7xK...`) that no escaping
 * of JSON or util.inspect could hide from the check. Port 1 on 127.0.0.1 refuses at once, so
 * the "after a connection attempt" checks need no server.
 */
const PG_PASSWORD = "pgQ7xKa'pw]";
const MSSQL_PASSWORD = "msQ7xKb'pw]";
const CONFIG_PASSWORD = "cfQ7xKc'pw]";
const KEYSTORE_SECRET = 'ksQ7xKd-keystore-secret-0123456789';
const PLAIN_CORES = ['pgQ7xKa', 'msQ7xKb', 'cfQ7xKc', 'ksQ7xKd'];

const encoded = (password: string) => encodeURIComponent(password).replace(/'/g, '%27');
const pgUrl = `postgres://cellcrypt:${encoded(PG_PASSWORD)}@127.0.0.1:1/orgdb`;
const mssqlUrl = `mssql://sa:${encoded(MSSQL_PASSWORD)}@127.0.0.1:1/OrgDb?requestTimeout=2000`;
const configUrl = `postgres://keys:${encoded(CONFIG_PASSWORD)}@127.0.0.1:1/cfg`;

/** Every way a program prints or stores an object: JSON, util.inspect (console.log), deep and hidden-free. */
function renderings(value: unknown, deepest: number | null = null): string[] {
  const json = (() => {
    try {
      return JSON.stringify(value) ?? '';
    } catch (error) {
      return `(not JSON: ${(error as Error).message})`;
    }
  })();
  return [json, inspect(value), inspect(value, { depth: deepest })];
}

function expectNoPassword(label: string, value: unknown, deepest: number | null = null): void {
  const secrets = [PG_PASSWORD, MSSQL_PASSWORD, CONFIG_PASSWORD, KEYSTORE_SECRET, ...PLAIN_CORES];
  const percentEncoded = [PG_PASSWORD, MSSQL_PASSWORD, CONFIG_PASSWORD].map(encoded);
  for (const text of renderings(value, deepest)) {
    for (const secret of [...secrets, ...percentEncoded]) {
      const at = text.indexOf(secret);
      expect(at, `${label} shows "${secret}": ...${text.slice(Math.max(0, at - 300), at + 100)}`).to.equal(-1);
    }
  }
}

function settingsFor(databaseUrl: string): Settings {
  return loadSettings({
    env: { DATABASE_URL: databaseUrl, CELLCRYPT_CONFIG_URL: configUrl, CELLCRYPT_KEYSTORE_SECRET: KEYSTORE_SECRET },
    cwd: '/',
  });
}

/** Runs one query that must fail to connect, and returns its error (the message is checked too). */
async function failedConnection(knex: Knex): Promise<Error> {
  try {
    await knex.raw('select 1');
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the connection to 127.0.0.1:1 to fail');
}

describe('connection passwords stay out of every printable object', function () {
  this.timeout(30_000);

  for (const [kind, url] of [
    ['postgres', pgUrl],
    ['mssql', mssqlUrl],
  ] as const) {
    describe(kind, () => {
      let knex: Knex | undefined;
      let engine: Engine | undefined;

      afterEach(async () => {
        if (engine) await engine.close();
        else await knex?.destroy();
        knex = engine = undefined;
      });

      it('the settings and their connection targets', () => {
        const settings = settingsFor(url);
        expect(settings.database.kind).to.equal(kind);
        expectNoPassword('settings', settings);
        expectNoPassword('settings.database', settings.database);
        expectNoPassword('settings.config', settings.config);
        expectNoPassword('{ ...settings }', { ...settings, database: { ...settings.database } });
      });

      it('the knex config (knexfile.ts) and a spread copy of it', async () => {
        const config = await knexConfigFor(settingsFor(url).database);
        expectNoPassword('knex config', config);
        expectNoPassword('knex config.connection', config.connection);
        expectNoPassword('{ ...config, migrations }', { ...config, migrations: {} });
      });

      it("the knex instance's client.config and connectionSettings, before and after connecting", async () => {
        const target = settingsFor(url).database;
        knex = await openKnex(target);
        expectNoPassword('knex.client.config', knex.client.config);
        expectNoPassword('knex.client.connectionSettings', knex.client.connectionSettings);
        const error = await failedConnection(knex);
        expectNoPassword('the connection error', `${error.message}\n${error.stack}\n${inspect(error)}`);
        expectNoPassword('knex.client.config after connecting', knex.client.config);
        expectNoPassword('knex.client.connectionSettings after connecting', knex.client.connectionSettings);
        expectNoPassword('knex.client', knex.client);
      });

      it('the engine, before and after connecting', async () => {
        const target = settingsFor(url).database;
        engine = engineAround(target, await openKnex(target));
        expectNoPassword('engine', engine);
        await failedConnection(engine.knex);
        expectNoPassword('engine after connecting', engine);
      });
    });
  }

  it('pglite: an embedded org with its key store on a server', async function () {
    this.timeout(120_000); // PGlite's wasm start-up, slow on a loaded machine
    const settings = settingsFor('pglite:memory://');
    expectNoPassword('settings', settings);
    // A PGlite instance printed in full is some 150 MB (its wasm heap); four levels reach knex's connection settings.
    // Without pgcrypto (plainTables): nothing here needs it, and loading it is most of what opening costs.
    const engine = engineAround(settings.database, await openKnex(settings.database, { plainTables: true }));
    try {
      await engine.knex.raw('select 1');
      expectNoPassword('pglite engine', engine, 4);
      expectNoPassword('pglite knex.client.config', engine.knex.client.config, 4);
    } finally {
      await engine.close();
    }
  });

  it('the key store connection (openKnex of the config database) hides its password too', async () => {
    const knex = await openKnex(settingsFor(pgUrl).config, { plainTables: true });
    try {
      expectNoPassword('key-store knex.client.config', knex.client.config);
      await failedConnection(knex);
      expectNoPassword('key-store knex.client after connecting', knex.client);
    } finally {
      await knex.destroy();
    }
  });

  it('the password still reaches the driver (pg reads it when it connects)', async () => {
    const knex = await openKnex(settingsFor(pgUrl).database);
    try {
      // pg parses the connection string it is given at connect time; a Client built from
      // knex's settings must carry the user, host, port, database and password of the URL.
      await failedConnection(knex);
      const { Client } = await import('pg');
      const client = new Client(knex.client.connectionSettings) as unknown as Record<string, unknown>;
      expect(client).to.include({ user: 'cellcrypt', host: '127.0.0.1', port: 1, database: 'orgdb' });
      expect(client.password).to.equal(PG_PASSWORD);
      expect((client.connectionParameters as Record<string, unknown>).application_name).to.equal('cellcrypt');
    } finally {
      await knex.destroy();
    }
  });
});
