import { scenarios } from '../../scenarios/activate-operator-mistakes';
import { forTarget } from '../../support/targets';

forTarget('postgres', scenarios);
