import { scenarios } from '../../scenarios/rewrap';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
