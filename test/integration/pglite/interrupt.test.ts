import { scenarios } from '../../scenarios/interrupt';
import { forTarget } from '../../support/targets';

forTarget('pglite', scenarios);
