import { scenarios } from '../../scenarios/install';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
