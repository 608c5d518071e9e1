/** Generation settings kept in localStorage: model, temperature, reasoning budget, max tokens. */

export interface Settings {
  model?: string;
  temperature?: number;
  reasoningBudget?: number;
  maxTokens?: number;
}

const KEY = 'frugal.settings';

function finiteOrUndefined(value: unknown, min: number, max: number): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? value : undefined;
}

export function loadSettings(): Settings {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Record<string, unknown>;
    return {
      model: typeof raw.model === 'string' ? raw.model : undefined,
      temperature: finiteOrUndefined(raw.temperature, 0, 2),
      reasoningBudget: finiteOrUndefined(raw.reasoningBudget, 0, 1e7),
      maxTokens: finiteOrUndefined(raw.maxTokens, 1, 1e7),
    };
  } catch {
    return {};
  }
}

export function saveSettings(settings: Settings): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(settings));
  } catch {
    // storage unavailable (private mode): settings last for this page only
  }
}

/** Parses a number input's value: undefined when empty or out of [min, max]. */
export function numberField(value: string, min: number, max: number, integer: boolean): number | undefined {
  if (value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) return undefined;
  return n;
}
