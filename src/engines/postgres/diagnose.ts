import type { Db, EngineDiagnosis } from '../engine';

/**
 * PostgreSQL/PGlite checks for `doctor`: the server, pgcrypto, our functions being current, and
 * whether the server would log key secrets for a user who cannot turn that off.
 */
/** `GRANT SET ON PARAMETER log_parameter_max_length` (PostgreSQL 15 and later) lets cellcrypt hide them. */
async function maySetParameterLogging(db: Db): Promise<boolean> {
  const exists = await db.raw(`select to_regproc('pg_catalog.has_parameter_privilege') is not null as present`);
  if (!exists.rows[0].present) return false;
  const granted = await db.raw(`select has_parameter_privilege('log_parameter_max_length', 'SET') as granted`);
  return granted.rows[0].granted === true;
}

export async function diagnosePostgres(db: Db): Promise<EngineDiagnosis[]> {
  const row = (
    await db.raw(
      `select current_setting('server_version') as version,
              (select extversion from pg_extension where extname = 'pgcrypto') as pgcrypto,
              to_regprocedure('cellcrypt.hide_parameters_from_logs()') is not null as current_functions,
              to_regnamespace('cellcrypt') is not null as prepared,
              current_setting('log_statement') as log_statement,
              current_setting('log_min_duration_statement')::int as log_min_duration,
              (select rolsuper from pg_roles where rolname = current_user) as superuser`,
    )
  ).rows[0] as {
    version: string;
    pgcrypto: string | null;
    current_functions: boolean;
    prepared: boolean;
    log_statement: string;
    log_min_duration: number;
    superuser: boolean;
  };
  const checks: EngineDiagnosis[] = [{ check: 'server', outcome: 'ok', detail: `PostgreSQL ${row.version}` }];
  if (row.prepared) {
    checks.push(
      row.pgcrypto
        ? { check: 'pgcrypto', outcome: 'ok', detail: `pgcrypto ${row.pgcrypto}` }
        : {
            check: 'pgcrypto',
            outcome: 'fail',
            detail: 'the pgcrypto extension is missing',
            hint: 'run `cellcrypt install` (it creates it) as a user who may create extensions',
          },
      row.current_functions
        ? { check: 'functions', outcome: 'ok', detail: 'schema cellcrypt is up to date' }
        : {
            check: 'functions',
            outcome: 'warn',
            detail: 'schema cellcrypt was prepared by an older cellcrypt',
            hint: 'run `cellcrypt install` to update its functions',
          },
    );
  }
  const logsParameters = row.log_statement === 'all' || row.log_statement === 'mod' || row.log_min_duration >= 0;
  if (logsParameters && !row.superuser && !(await maySetParameterLogging(db))) {
    checks.push({
      check: 'server log',
      outcome: 'warn',
      detail:
        `the server logs statements (log_statement=${row.log_statement}, ` +
        `log_min_duration_statement=${row.log_min_duration}) and this user cannot turn off parameter logging`,
      hint:
        "as a superuser: ALTER ROLE <cellcrypt user> SET log_statement = 'none' (and " +
        'log_min_duration_statement = -1), or GRANT SET ON PARAMETER log_parameter_max_length',
    });
  } else {
    checks.push({
      check: 'server log',
      outcome: 'ok',
      detail: logsParameters
        ? 'statement logging is on; cellcrypt turns parameter logging off for key operations'
        : 'statements are not logged with parameters',
    });
  }
  return checks;
}
