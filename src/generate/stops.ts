/**
 * Stop strings over streamed text. Text arrives in pieces (one per token); a stop string may
 * span pieces. The matcher releases text only once it cannot be the start of a stop string, so
 * the stop string itself (and anything after it) is never emitted.
 */
export interface StopPush {
  /** Text safe to emit now. */
  text: string;
  /** The stop string that matched, when one did (generation must end). */
  stop?: string;
}

export class StopStringMatcher {
  private readonly stops: readonly string[];
  private pending = '';
  private stopped = false;

  constructor(stops: readonly string[] = []) {
    for (const [i, s] of stops.entries()) {
      if (typeof s !== 'string' || s.length === 0) throw new Error(`stop string ${i} must be a non-empty string`);
    }
    this.stops = [...stops];
  }

  get active(): boolean {
    return this.stops.length > 0;
  }

  /** Text held back because it may begin a stop string. */
  get held(): string {
    return this.pending;
  }

  push(piece: string): StopPush {
    if (this.stopped) return { text: '' };
    if (this.stops.length === 0) return { text: piece };
    const buf = this.pending + piece;
    // Earliest match wins; at equal positions, the longest stop string.
    let at = -1;
    let which = '';
    for (const s of this.stops) {
      const i = indexAtCodePoints(buf, s);
      if (i >= 0 && (at < 0 || i < at || (i === at && s.length > which.length))) {
        at = i;
        which = s;
      }
    }
    if (at >= 0) {
      this.stopped = true;
      this.pending = '';
      return { text: buf.slice(0, at), stop: which };
    }
    const keep = this.longestPartialSuffix(buf);
    this.pending = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep) };
  }

  /** Releases the held text (generation ended for another reason). */
  flush(): string {
    const text = this.stopped ? '' : this.pending;
    this.pending = '';
    return text;
  }

  /** Length of the longest suffix of buf that is a proper prefix of some stop string. */
  private longestPartialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      const max = Math.min(s.length - 1, buf.length);
      for (let len = max; len > best; len--) {
        if (buf.endsWith(s.slice(0, len)) && !splitsPair(buf, buf.length - len)) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}

/**
 * First index of `stop` in `text` where it starts and ends between characters: a stop string
 * with half a surrogate pair (JSON "\ud83d") must not cut an emoji in two.
 */
function indexAtCodePoints(text: string, stop: string): number {
  for (let i = text.indexOf(stop); i >= 0; i = text.indexOf(stop, i + 1)) {
    if (!splitsPair(text, i) && !splitsPair(text, i + stop.length)) return i;
  }
  return -1;
}

/** True when `index` falls between the two halves of a surrogate pair. */
function splitsPair(text: string, index: number): boolean {
  if (index <= 0 || index >= text.length) return false;
  const before = text.charCodeAt(index - 1);
  const after = text.charCodeAt(index);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
}
