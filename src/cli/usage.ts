/** A command line the `raftkv` command rejects before any request (exit 2); shared by its modules. */
export class UsageError extends Error {}
