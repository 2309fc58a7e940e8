import type { Settings } from './config/settings';
import { createToolkit, type Toolkit, type ToolkitOptions } from './core/toolkit';
import { openEngine } from './engines';

/**
 * The composition root: opens the org database's engine with the one factory and hands it to
 * core, which never chooses an engine itself. The toolkit closes the engine with itself.
 */
export async function openToolkit(
  settings: Settings,
  options: Omit<ToolkitOptions, 'ownsEngine'> = {},
): Promise<Toolkit> {
  const engine = await openEngine(settings.database);
  return createToolkit(settings, engine, { ...options, ownsEngine: true });
}
