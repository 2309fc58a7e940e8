import { scenarios } from '../../scenarios/status-truth';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
