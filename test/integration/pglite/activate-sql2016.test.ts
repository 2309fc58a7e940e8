import { scenarios } from '../../scenarios/activate-sql2016';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
