import { scenarios } from '../../scenarios/status-truth';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
