import type { Platform, TimerHandle } from './platform.js';
import type { TokenStorage } from './storage.js';

/** Saving every event's position would be a storage write per event: coalesce into one per interval. */
const SAVE_DELAY_MS = 1000;

/**
 * The last position seen, kept in memory and persisted (debounced) with the token storage adapter,
 * so an app restarted while offline still presents it and gets what it missed.
 */
export class PositionStore {
  private current: string | undefined;
  private timer: TimerHandle | undefined;
  private readonly loaded: Promise<void>;
  /** Bumped by clear(): a load or save started before must not bring an old position back. */
  private generation = 0;

  constructor(
    private readonly storage: TokenStorage,
    private readonly key: string,
    private readonly platform: Platform,
  ) {
    const generation = this.generation;
    this.loaded = storage.get(key).then(
      (value) => {
        if (generation === this.generation && this.current === undefined && value !== null) this.current = value;
      },
      () => undefined,
    );
  }

  /** The position to present, once storage has been read. */
  async get(): Promise<string | undefined> {
    await this.loaded;
    return this.current;
  }

  peek(): string | undefined {
    return this.current;
  }

  set(position: string): void {
    if (position === this.current) return;
    this.current = position;
    this.timer ??= this.platform.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, SAVE_DELAY_MS);
  }

  /** Writes the position now (also called on close). */
  flush(): void {
    if (this.timer !== undefined) this.platform.clearTimeout(this.timer);
    this.timer = undefined;
    const value = this.current;
    if (value !== undefined) this.storage.set(this.key, value).catch(() => undefined);
  }

  /** Forgets the position (logout: the next user starts fresh). */
  clear(): void {
    this.generation++;
    if (this.timer !== undefined) this.platform.clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
    this.storage.remove(this.key).catch(() => undefined);
  }
}
