import type { ConnectionTarget } from '../config/connection-target';
import { CellcryptError } from '../core/errors';
import type { Engine } from './engine';
import { openPostgresEngine } from './postgres/engine';

/** The one place that turns a connection target into an engine. */
export async function openEngine(target: ConnectionTarget): Promise<Engine> {
  switch (target.kind) {
    case 'pglite':
    case 'postgres':
      return openPostgresEngine(target);
    case 'mssql':
      throw new CellcryptError('CellcryptEngineUnsupported', `${target.display}: the mssql engine is not built yet in this version`, {
        exitCode: 2,
        hint: 'use a postgres:// or pglite: database, or `cellcrypt script ... --engine mssql` once available',
      });
  }
}

export type { Engine } from './engine';
