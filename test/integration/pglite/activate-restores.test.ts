import { scenarios } from '../../scenarios/activate-restores';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
