import { scenarios } from '../../scenarios/application-contract';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
