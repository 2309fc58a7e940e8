import { handMadeScenarios } from '../../scenarios/activate-key-files';
import { forTarget } from '../../support/targets';

forTarget('postgres', handMadeScenarios);
