import { scenarios } from '../../scenarios/read-only';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
