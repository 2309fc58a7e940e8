import { scenarios } from '../../scenarios/key-history';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
