import { scenarios } from '../../scenarios/activate-passphrases';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
