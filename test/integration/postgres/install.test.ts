import { scenarios } from '../../scenarios/install';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
