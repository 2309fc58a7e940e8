import { scenarios } from '../../scenarios/concurrency';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
