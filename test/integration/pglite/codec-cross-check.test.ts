import { scenarios } from '../../scenarios/codec-cross-check';
import { forRawTarget } from '../../support/targets';

forRawTarget('pglite', scenarios);
