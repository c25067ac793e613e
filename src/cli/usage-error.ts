// A mistake on the command line, as opposed to one in the config: it exits 2.

/** Exit 2, with the usage unless the message says it all. */
export class UsageError extends Error {
  readonly showUsage: boolean;
  constructor(message: string, showUsage = true) {
    super(message);
    this.showUsage = showUsage;
  }
}
