import knexFactory, { type Knex } from 'knex';
import type { ConnectionTarget, EngineKind } from '../config/connection-target';
import type { DryRunRenderer, Engine, ScriptRenderer, SelftestOps } from './engine';
import { mssqlScripts } from './mssql/script';
import { mssqlDryRun } from './mssql/dry-run';
import { postgresDryRun } from './postgres/dry-run';
import { mssqlKnexConfig, mssqlTimeouts } from './mssql/connect';
import { mssqlEngine } from './mssql/engine';
import { connectPglite, connectPostgres, pgliteKnexConfig, postgresKnexConfig, wrapKnex } from './postgres/connect';
import { postgresEngine } from './postgres/engine';
import { postgresSelftest } from './postgres/selftest';
import { mssqlSelftest } from './mssql/selftest';

/**
 * The one place that turns a connection target into an engine, or into a knex connection for
 * the key store and the knex CLI. Nothing else in cellcrypt chooses an engine by the kind of
 * its connection: the CLI, `knexfile.ts`, the migrations and the key store all come here.
 */
export async function openEngine(target: ConnectionTarget): Promise<Engine> {
  return engineAround(target, await openKnex(target));
}

/**
 * An engine over a knex instance that someone else opened (a migration run by `npx knex`
 * receives only its knex). Closing the engine closes that knex.
 */
export function engineAround(target: ConnectionTarget, knex: Knex): Engine {
  switch (target.kind) {
    case 'pglite':
    case 'postgres':
      return withSelftest(postgresEngine(target, wrapKnex(target, knex)), postgresSelftest(target, knex));
    case 'mssql':
      return withSelftest(mssqlEngine(target, knex, mssqlTimeouts(target)), mssqlSelftest(target, knex));
  }
}

/** The engine with its half of `cellcrypt selftest` (engines/<kind>/selftest.ts). */
function withSelftest(engine: Engine, selftest: SelftestOps): Engine {
  return { ...engine, selftest };
}

/**
 * A knex connection to any target. `plainTables`: the connection only needs tables (the key
 * store's config database), not cellcrypt's cell functions, so PGlite opens without pgcrypto.
 */
export async function openKnex(target: ConnectionTarget, options: { plainTables?: boolean } = {}): Promise<Knex> {
  switch (target.kind) {
    case 'pglite':
      return (await connectPglite(target, { pgcrypto: !options.plainTables })).knex;
    case 'postgres':
      return (await connectPostgres(target)).knex;
    case 'mssql':
      return knexFactory(mssqlKnexConfig(target));
  }
}

/** The knex configuration of a target, for `knexfile.ts` (`npx knex migrate:latest`). */
export async function knexConfigFor(target: ConnectionTarget): Promise<Knex.Config> {
  switch (target.kind) {
    case 'pglite':
      return pgliteKnexConfig(target);
    case 'postgres':
      return postgresKnexConfig(target);
    case 'mssql':
      return mssqlKnexConfig(target);
  }
}

/** An engine's `--dry-run` renderer without a connection (tests, and `cellcrypt script`). */
export function dryRunRendererFor(kind: EngineKind): DryRunRenderer {
  return kind === 'mssql' ? mssqlDryRun : postgresDryRun;
}

/** The engines that can print a script for a DBA to run by hand (`cellcrypt script --engine`). */
export const SCRIPT_RENDERERS: Readonly<Record<'mssql', ScriptRenderer>> = { mssql: mssqlScripts };

export const ENGINE_KINDS: readonly EngineKind[] = ['pglite', 'postgres', 'mssql'];

export type { Engine } from './engine';
