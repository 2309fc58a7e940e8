import { scenarios } from '../../scenarios/activate-key-shares';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
