import { scenarios } from '../../scenarios/change-key-client';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
