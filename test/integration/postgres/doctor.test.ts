import { scenarios } from '../../scenarios/doctor';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
