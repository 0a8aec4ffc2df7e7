/** What a command may touch of its process: output streams, the environment, and a stop signal. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTty: boolean;
  env: Record<string, string | undefined>;
  /** Aborted on SIGTERM/SIGINT. */
  stop: AbortSignal;
  /** Subscribes to SIGHUP (reload); returns the unsubscribe function. */
  onHangup?: (listener: () => void) => () => void;
}
