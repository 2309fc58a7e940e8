import { moreScenarios } from '../../scenarios/activate-restores';
import { forTarget } from '../../support/targets';

forTarget('pglite', moreScenarios);
