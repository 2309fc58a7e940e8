import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';

/**
 * The org's migrations, named by their source file (`20261128000001_toolkit_tables.ts`) whether
 * they run from TypeScript (tests, `npx knex`) or compiled JavaScript (`dist/`, what the
 * `cellcrypt` executable runs). knex's own file source names a migration by the file it loads:
 * an org installed from source and upgraded by the compiled executable would list every applied
 * migration as missing ("the migration directory is corrupt") and refuse to run.
 */
/** As knex's own file source describes a migration: `migrate status` and knex's CLI print `file`. */
export interface OrgMigration {
  readonly file: string;
  readonly directory: string;
}

export class OrgMigrationSource implements Knex.MigrationSource<OrgMigration> {
  constructor(private readonly directory: string) {}

  async getMigrations(): Promise<OrgMigration[]> {
    return this.names().map((file) => ({ file, directory: this.directory }));
  }

  /** The migrations in order, by file name without extension. */
  bases(): string[] {
    const bases = readdirSync(this.directory)
      .filter((file) => /\.(ts|js)$/.test(file) && !file.endsWith('.d.ts'))
      .map((file) => file.replace(/\.(ts|js)$/, ''));
    return [...new Set(bases)].sort();
  }

  /** The names knex records for them in `cellcrypt_migrations`: the source files'. */
  names(): string[] {
    return this.bases().map((base) => `${base}.ts`);
  }

  getMigrationName(migration: OrgMigration): string {
    return migration.file;
  }

  async getMigration(migration: OrgMigration): Promise<Knex.Migration> {
    // Without an extension, require finds the compiled `.js` or, under tsx, the `.ts`.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(join(this.directory, migration.file.replace(/\.ts$/, ''))) as Knex.Migration;
  }
}
