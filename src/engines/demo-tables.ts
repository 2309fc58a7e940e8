import type { DemoTableSpec } from './engine';

/**
 * The Dynamics-shaped org tables of `cellcrypt demo seed`, the same on every engine: the four
 * Base tables that hold the default sensitive columns, each keyed by a uniqueidentifier.
 */
export const DEMO_TABLES: readonly DemoTableSpec[] = [
  {
    table: 'EmailServerProfileBase',
    primaryKey: 'EmailServerProfileId',
    secrets: [
      { column: 'IncomingPassword', maxLength: 250 },
      { column: 'OutgoingPassword', maxLength: 250 },
    ],
  },
  { table: 'MailboxBase', primaryKey: 'MailboxId', secrets: [{ column: 'Password', maxLength: 200 }] },
  { table: 'QueueBase', primaryKey: 'QueueId', secrets: [{ column: 'EmailPassword', maxLength: 200 }] },
  { table: 'UserSettingsBase', primaryKey: 'SystemUserId', secrets: [{ column: 'EmailPassword', maxLength: 200 }] },
];
