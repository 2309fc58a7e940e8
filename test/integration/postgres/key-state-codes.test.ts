import { scenarios } from '../../scenarios/key-state-codes';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
