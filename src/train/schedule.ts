/**
 * Learning-rate schedules as pure functions of the 0-based step.
 *
 * Warmup (both schedules): lr = maxLr · (step + 1) / warmupSteps for step < warmupSteps, so
 * the first step already moves and step warmupSteps − 1 reaches maxLr.
 */

export interface CosineSchedule {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  /** The step at which the cosine reaches minLr (and stays there). */
  totalSteps: number;
}

/** Linear warmup, then cosine decay from maxLr to minLr at totalSteps, then minLr. */
export function warmupCosine(step: number, s: CosineSchedule): number {
  checkCommon(step, s.maxLr, s.minLr, s.warmupSteps, s.totalSteps);
  if (step < s.warmupSteps) return (s.maxLr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  const progress = (step - s.warmupSteps) / (s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (s.maxLr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}

export interface WsdSchedule {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Length of the final decay phase (the stable phase fills the rest). */
  decaySteps: number;
  /** Decay curve from maxLr to minLr: linear (default), cosine, or 1 − sqrt(progress). */
  decayShape?: 'linear' | 'cosine' | 'sqrt';
}

/**
 * Warmup–stable–decay: linear warmup, maxLr until totalSteps − decaySteps, then decay to minLr
 * at totalSteps, then minLr.
 */
export function warmupStableDecay(step: number, s: WsdSchedule): number {
  checkCommon(step, s.maxLr, s.minLr, s.warmupSteps, s.totalSteps);
  if (!Number.isInteger(s.decaySteps) || s.decaySteps < 0 || s.warmupSteps + s.decaySteps > s.totalSteps) {
    throw new Error(`warmupStableDecay: decaySteps ${s.decaySteps} must be an integer in 0..totalSteps − warmupSteps (${s.totalSteps - s.warmupSteps})`);
  }
  if (step < s.warmupSteps) return (s.maxLr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  const decayStart = s.totalSteps - s.decaySteps;
  if (step < decayStart) return s.maxLr;
  const progress = (step - decayStart) / s.decaySteps;
  const shape = s.decayShape ?? 'linear';
  const remaining = shape === 'linear' ? 1 - progress : shape === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - Math.sqrt(progress);
  return s.minLr + (s.maxLr - s.minLr) * remaining;
}

function checkCommon(step: number, maxLr: number, minLr: number, warmupSteps: number, totalSteps: number): void {
  if (!Number.isInteger(step) || step < 0) throw new Error(`schedule: step ${step} must be an integer >= 0`);
  if (!(maxLr >= 0) || !(minLr >= 0) || minLr > maxLr) throw new Error(`schedule: need 0 <= minLr (${minLr}) <= maxLr (${maxLr})`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new Error(`schedule: warmupSteps ${warmupSteps} must be an integer >= 0`);
  if (!Number.isInteger(totalSteps) || totalSteps < warmupSteps) throw new Error(`schedule: totalSteps ${totalSteps} must be an integer >= warmupSteps (${warmupSteps})`);
}
