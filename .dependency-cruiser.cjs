/**
 * The layer rules of the design (DESIGN.md, "Layout"): inside src/ a folder imports only folders
 * below it. From the top: cli -> core -> engines, keystore -> config, cellcrypt -> common.
 * `npm run lint` runs this; a forbidden import fails with the rule's name.
 */
const layer = (name) => `^src/${name}/`;

module.exports = {
  forbidden: [
    {
      name: 'common-is-the-ground',
      comment: 'src/common imports nothing of ours',
      severity: 'error',
      from: { path: layer('common') },
      to: { path: '^src/', pathNot: layer('common') },
    },
    {
      name: 'codec-is-pure',
      comment: 'src/cellcrypt (codec and derivations) imports only src/common',
      severity: 'error',
      from: { path: layer('cellcrypt') },
      to: { path: '^src/', pathNot: [layer('cellcrypt'), layer('common')] },
    },
    {
      name: 'config-imports-only-the-ground',
      comment: 'src/config imports only src/common (and the codec)',
      severity: 'error',
      from: { path: layer('config') },
      to: { path: '^src/', pathNot: [layer('config'), layer('common'), layer('cellcrypt')] },
    },
    {
      name: 'engines-never-import-policy',
      comment: 'engines answer "do this, report that": they import no core, keystore or cli',
      severity: 'error',
      from: { path: layer('engines') },
      to: { path: [layer('core'), layer('keystore'), layer('cli'), '^src/index\\.ts$', '^src/open-toolkit\\.ts$'] },
    },
    {
      name: 'keystore-connects-through-the-factory',
      comment: 'the key store gets its connection from engines/index.ts, never from engine internals or core',
      severity: 'error',
      from: { path: layer('keystore') },
      to: { path: [layer('core'), layer('cli'), '^src/engines/(postgres|mssql)/'] },
    },
    {
      name: 'core-receives-its-engine',
      comment: 'core never chooses or imports a concrete engine, nor the factory: it receives an Engine',
      severity: 'error',
      from: { path: layer('core') },
      to: { path: ['^src/engines/(postgres|mssql)/', '^src/engines/index\\.ts$', layer('cli')] },
    },
    {
      name: 'core-imports-no-driver',
      comment: 'core talks to databases only through the engine (type imports of knex are fine)',
      severity: 'error',
      from: { path: layer('core') },
      to: {
        dependencyTypesNot: ['type-only'],
        path: '(^|/)node_modules/(pg|tedious|mssql|knex|knex-pglite|@electric-sql/pglite)/',
      },
    },
    {
      name: 'engines-stay-in-their-folder',
      comment: "one engine never imports another engine's files; shared code lives in src/engines/*.ts",
      severity: 'error',
      from: { path: '^src/engines/(postgres|mssql)/' },
      to: { path: '^src/engines/(postgres|mssql)/', pathNot: '^src/engines/$1/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '\\.sql$' },
  },
};
