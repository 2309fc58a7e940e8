import { AsyncLocalStorage } from 'node:async_hooks';
import { resolve } from 'node:path';
import type { Knex } from 'knex';
import { CellcryptError } from '../common/errors';
import { convertColumns, planConversion, type ColumnConversion, type ColumnPlan } from './convert';
import { provisionKeys, type ProvisionResult } from './provision';
import type { Toolkit } from './toolkit';
import { createToolkitTables } from './toolkit-tables';
import { OrgMigrationSource } from './migration-source';

/**
 * The steps of one install, each done at most once however many migrations ask for it. The
 * knex migrations are thin: each names the step it stands for (prepare the engine, create
 * cellcrypt's tables, provision the keys, convert the columns), and `install` runs them inside
 * `runMigrationsWith`, so one install prepares the engine once and plans the conversion once
 * (before, core ran the migrations, which called back into core: three prepares, three plans).
 * Under `npx knex migrate:latest` no install is running and each migration builds its own run
 * (migrations/support/install-step.ts).
 */
export const ORG_MIGRATIONS = new OrgMigrationSource(resolve(__dirname, '../../migrations'));

export const MIGRATIONS_CONFIG: Knex.MigratorConfig = {
  migrationSource: ORG_MIGRATIONS,
  tableName: 'cellcrypt_migrations',
};

export class InstallRun {
  private prepared?: Promise<void>;
  private planned?: Promise<ColumnPlan[]>;
  private tablesCreated?: Promise<void>;
  private provisioned?: Promise<ProvisionResult>;
  private converted?: Promise<ColumnConversion[]>;

  constructor(readonly tk: Toolkit) {}

  /** Read-only: what each registered column is and holds (refuses a missing table or a value too long). */
  plan(): Promise<ColumnPlan[]> {
    return (this.planned ??= planConversion(this.tk));
  }

  /** The engine's own objects (schema `cellcrypt`, functions); idempotent. */
  prepare(): Promise<void> {
    return (this.prepared ??= this.tk.engine.prepare());
  }

  createTables(): Promise<void> {
    return (this.tablesCreated ??= this.prepare().then(() => createToolkitTables(this.tk.engine.knex)));
  }

  provision(): Promise<ProvisionResult> {
    return (this.provisioned ??= provisionKeys(this.tk).then((result) => {
      for (const item of result.created) this.tk.reporter.log(`created ${item}`);
      return result;
    }));
  }

  /** Encrypts every plaintext column of the plan; a second call returns the first call's result. */
  convert(): Promise<ColumnConversion[]> {
    return (this.converted ??= this.plan().then((plans) => convertColumns(this.tk, { plans })));
  }
}

const active = new AsyncLocalStorage<InstallRun>();

/** Runs the migrator with `tk`'s install run visible to every migration it runs. */
export function runMigrationsWith<T>(target: Toolkit | InstallRun, run: () => Promise<T>): Promise<T> {
  return active.run(target instanceof InstallRun ? target : new InstallRun(target), run);
}

/** The install run of the `install` that is running the migrations, if any. */
export function activeInstallRun(): InstallRun | undefined {
  return active.getStore();
}

/** What every down migration does: Dynamics data encryption cannot be turned off. */
export function refuseDown(): never {
  throw new CellcryptError(
    'CellcryptEncryptionCannotBeDisabled',
    'data encryption cannot be turned off; this migration has no down step',
    {
      exitCode: 2,
      hint:
        'to use another key run `cellcrypt change-key`; to read ' +
        'cells without the database use `cellcrypt decrypt-offline`',
    },
  );
}
