import { scenarios } from '../../scenarios/hostile-data';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
