import { scenarios } from '../../scenarios/selftest';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
