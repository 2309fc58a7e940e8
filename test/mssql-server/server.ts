/**
 * The real-server suite (`npm run test:mssql`): runs only with TEST_MSSQL_URL=mssql://user:pw@host/master
 * naming SQL Server 2017+ whose user may CREATE DATABASE (`npm run test:mssql:docker -- --version 2022`
 * starts one in Docker). NEVER EXECUTED where cellcrypt is built: no SQL Server can run there.
 * Without the variable the whole suite says, in one line, that it skipped.
 */
export const mssqlServerUrl: string | undefined = process.env.TEST_MSSQL_URL || undefined;

let toldSkipped = false;

/** `describe` when TEST_MSSQL_URL is set; otherwise the one line that says the suite skipped. */
export function onRealServer(title: string, body: (this: Mocha.Suite) => void): void {
  if (mssqlServerUrl) {
    describe(title, body);
    return;
  }
  if (toldSkipped) return;
  toldSkipped = true;
  process.stderr.write(
    'SQL Server real-server suite skipped: TEST_MSSQL_URL is not set (README, Verify on your server)\n',
  );
}
