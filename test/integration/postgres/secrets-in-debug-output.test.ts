import { scenarios } from '../../scenarios/secrets-in-debug-output';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
