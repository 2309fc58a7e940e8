import { scenarios } from '../../scenarios/pg-codec';
import { forRawTarget } from '../../support/targets';

forRawTarget('pglite', scenarios);
