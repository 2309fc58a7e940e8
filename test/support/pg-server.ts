import { Client } from 'pg';

/** The PostgreSQL server the integration suites also run on, when TEST_PG_URL names one. */
export function pgServerUrl(): string | undefined {
  return process.env.TEST_PG_URL || undefined;
}

/** One statement on its own connection (create/drop database cannot run in a transaction). */
export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
