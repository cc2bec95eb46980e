/** Quorum arithmetic over voter sets; pure functions used by the leader's commit and read rules. */

/** The number of votes that make a majority of `voters` voters. */
export function majority(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/**
 * The largest value that a majority of `values` is at least (the committed index when `values` are
 * match indices). Returns 0 for an empty set.
 */
export function quorumMin(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => b - a);
  return sorted[majority(values.length) - 1];
}
