import { scenarios } from '../../scenarios/cli';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
