import { scenarios } from '../../scenarios/selftest';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
