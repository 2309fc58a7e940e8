import { scenarios } from '../../scenarios/reencrypt-column';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
