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
export class OrgMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly directory: string) {}

  async getMigrations(): Promise<string[]> {
    return this.bases();
  }

  /** The migrations in order, by file name without extension. */
  bases(): string[] {
    const bases = readdirSync(this.directory)
      .filter((file) => /\.(ts|js)$/.test(file) && !file.endsWith('.d.ts'))
      .map((file) => file.replace(/\.(ts|js)$/, ''));
    return [...new Set(bases)].sort();
  }

  /** The names knex records for them in `cellcrypt_migrations`. */
  names(): string[] {
    return this.bases().map((base) => this.getMigrationName(base));
  }

  getMigrationName(base: string): string {
    return `${base}.ts`;
  }

  async getMigration(base: string): Promise<Knex.Migration> {
    // Without an extension, require finds the compiled `.js` or, under tsx, the `.ts`.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(join(this.directory, base)) as Knex.Migration;
  }
}
