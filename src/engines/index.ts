import type { ConnectionTarget } from '../config/connection-target';
import type { Engine } from './engine';
import { openMssqlEngine } from './mssql/engine';
import { openPostgresEngine } from './postgres/engine';

/** The one place that turns a connection target into an engine. */
export async function openEngine(target: ConnectionTarget): Promise<Engine> {
  switch (target.kind) {
    case 'pglite':
    case 'postgres':
      return openPostgresEngine(target);
    case 'mssql':
      return openMssqlEngine(target);
  }
}

export type { Engine } from './engine';
