import { scenarios } from '../../scenarios/change-key';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
