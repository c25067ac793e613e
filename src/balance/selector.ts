// A selector picks one backend of a pool for a request. The caller says which backends it can
// use right now (healthy, not yet tried by this request), and the selector chooses among those.

/** What a selector needs to know about a backend. */
export interface Candidate {
  /** Configured weight times any slow-start factor; a positive number. */
  readonly effectiveWeight: number;
  /** Requests currently being forwarded to this backend. */
  readonly inFlight: number;
}

export interface Selector<B extends Candidate> {
  /** Picks one of the backends for which `usable` is true, or undefined when there is none. */
  select(usable: (backend: B) => boolean): B | undefined;
}
