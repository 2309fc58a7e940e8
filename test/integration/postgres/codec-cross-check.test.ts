import { scenarios } from '../../scenarios/codec-cross-check';
import { forRawTarget } from '../../support/targets';

forRawTarget('postgres', scenarios);
