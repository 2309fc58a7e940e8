import { scenarios } from '../../scenarios/cli';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
