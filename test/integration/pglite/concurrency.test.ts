import { scenarios } from '../../scenarios/concurrency';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
