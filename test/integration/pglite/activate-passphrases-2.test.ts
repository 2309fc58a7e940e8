import { moreScenarios } from '../../scenarios/activate-passphrases';
import { forTarget } from '../../support/targets';

forTarget('pglite', moreScenarios);
